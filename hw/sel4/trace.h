#include "trace/trace-hw_sel4.h"
