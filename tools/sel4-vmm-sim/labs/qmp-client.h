/*
 * A minimal QMP client: one unix socket, one command at a time.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * For the demo and the tests: connect to QEMU's -qmp unix:PATH socket,
 * negotiate capabilities, run commands and get their "return" as a
 * JsonNode (json-glib).  Asynchronous events QEMU sends meanwhile are
 * skipped.
 */
#ifndef VMM_SIM_QMP_CLIENT_H
#define VMM_SIM_QMP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct QmpClient QmpClient;

/* Connect (retrying until @timeout_ms) and leave capabilities mode. */
QmpClient *qmp_client_connect(const char *path, int timeout_ms,
                              GError **errp);
void qmp_client_free(QmpClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QmpClient, qmp_client_free)

/*
 * Run @command with @args_json (a JSON object text, or NULL).  Returns
 * the "return" member (free with json_node_unref), or NULL with @errp set
 * to QEMU's error description.
 */
JsonNode *qmp_client_call(QmpClient *c, const char *command,
                          const char *args_json, GError **errp);
/* HMP @cmdline through human-monitor-command: its output, or NULL. */
char *qmp_client_hmp(QmpClient *c, const char *cmdline, GError **errp);
/*
 * qom-get @path @property of a uint64; false with @errp set if it is not
 * one.
 */
bool qmp_client_qom_get_u64(QmpClient *c, const char *path,
                            const char *property, uint64_t *value,
                            GError **errp);

#endif
