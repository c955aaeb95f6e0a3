#include "trace/trace-accel_sel4.h"
