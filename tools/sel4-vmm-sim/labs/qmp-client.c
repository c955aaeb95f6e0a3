/*
 * A minimal QMP client: one unix socket, one command at a time.
 *
 * Copyright (c) 2026 The sel4-qemu-uring authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>

#include "qmp-client.h"

/* A reply slower than this means QEMU is stuck. */
#define QMP_READ_TIMEOUT_S  20

struct QmpClient {
    GSocketConnection *conn;
    GDataInputStream *in;
};

void qmp_client_free(QmpClient *c)
{
    if (c) {
        g_clear_object(&c->in);
        g_clear_object(&c->conn);
        g_free(c);
    }
}

/* The next message QEMU sends (one JSON object per line). */
static JsonObject *qmp_read(QmpClient *c, JsonNode **node, GError **errp)
{
    g_autofree char *line = NULL;
    GError *err = NULL;

    line = g_data_input_stream_read_line(c->in, NULL, NULL, &err);
    if (!line) {
        if (err) {
            g_propagate_prefixed_error(errp, err, "QMP: ");
        } else {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_CLOSED,
                        "QMP: QEMU closed the connection");
        }
        return NULL;
    }
    *node = json_from_string(line, errp);
    if (!*node) {
        return NULL;
    }
    if (!JSON_NODE_HOLDS_OBJECT(*node)) {
        json_node_unref(*node);
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "QMP: not an object: %s", line);
        return NULL;
    }
    return json_node_get_object(*node);
}

/* Wait for the reply to the command just sent; events are skipped. */
static JsonNode *qmp_reply(QmpClient *c, GError **errp)
{
    for (;;) {
        g_autoptr(JsonNode) node = NULL;
        JsonObject *o = qmp_read(c, &node, errp);

        if (!o) {
            return NULL;
        }
        if (json_object_has_member(o, "return")) {
            return json_node_copy(json_object_get_member(o, "return"));
        }
        if (json_object_has_member(o, "error")) {
            JsonObject *e = json_object_get_object_member(o, "error");

            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "QMP: %s",
                        e && json_object_has_member(e, "desc") ?
                        json_object_get_string_member(e, "desc") : "error");
            return NULL;
        }
        /* an event, or the greeting */
    }
}

JsonNode *qmp_client_call(QmpClient *c, const char *command,
                          const char *args_json, GError **errp)
{
    g_autofree char *msg = g_strdup_printf(
        "{\"execute\": \"%s\"%s%s}\n", command,
        args_json ? ", \"arguments\": " : "", args_json ? args_json : "");
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(c->conn));

    if (!g_output_stream_write_all(out, msg, strlen(msg), NULL, NULL, errp)) {
        return NULL;
    }
    return qmp_reply(c, errp);
}

QmpClient *qmp_client_connect(const char *path, int timeout_ms, GError **errp)
{
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000LL;
    g_autoptr(QmpClient) c = g_new0(QmpClient, 1);
    g_autoptr(JsonNode) greeting = NULL, caps = NULL;

    for (;;) {
        g_autoptr(GError) err = NULL;

        c->conn = g_socket_client_connect(client,
                                          G_SOCKET_CONNECTABLE(addr), NULL,
                                          &err);
        if (c->conn) {
            break;
        }
        if (g_get_monotonic_time() > end) {
            g_propagate_prefixed_error(errp, g_steal_pointer(&err),
                                       "QMP: connecting to %s: ", path);
            return NULL;
        }
        g_usleep(20 * 1000);
    }
    g_socket_set_timeout(g_socket_connection_get_socket(c->conn),
                         QMP_READ_TIMEOUT_S);
    c->in = g_data_input_stream_new(
        g_io_stream_get_input_stream(G_IO_STREAM(c->conn)));
    g_data_input_stream_set_newline_type(c->in,
                                         G_DATA_STREAM_NEWLINE_TYPE_ANY);
    if (!qmp_read(c, &greeting, errp)) {
        return NULL;
    }
    caps = qmp_client_call(c, "qmp_capabilities", NULL, errp);
    if (!caps) {
        return NULL;
    }
    return g_steal_pointer(&c);
}

/* Run @command with string arguments @k1=@v1 and, unless NULL, @k2=@v2. */
static JsonNode *qmp_call_strings(QmpClient *c, const char *command,
                                  const char *k1, const char *v1,
                                  const char *k2, const char *v2,
                                  GError **errp)
{
    g_autoptr(JsonNode) args = json_node_new(JSON_NODE_OBJECT);
    g_autoptr(JsonObject) o = json_object_new();
    g_autofree char *text = NULL;

    json_object_set_string_member(o, k1, v1);
    if (k2) {
        json_object_set_string_member(o, k2, v2);
    }
    json_node_set_object(args, o);
    text = json_to_string(args, false);
    return qmp_client_call(c, command, text, errp);
}

char *qmp_client_hmp(QmpClient *c, const char *cmdline, GError **errp)
{
    g_autoptr(JsonNode) ret = qmp_call_strings(c, "human-monitor-command",
                                               "command-line", cmdline,
                                               NULL, NULL, errp);

    if (!ret) {
        return NULL;
    }
    if (!JSON_NODE_HOLDS_VALUE(ret) ||
        json_node_get_value_type(ret) != G_TYPE_STRING) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "QMP: human-monitor-command returned no string");
        return NULL;
    }
    return g_strdup(json_node_get_string(ret));
}

bool qmp_client_qom_get_u64(QmpClient *c, const char *path,
                            const char *property, uint64_t *value,
                            GError **errp)
{
    g_autoptr(JsonNode) ret = qmp_call_strings(c, "qom-get", "path", path,
                                               "property", property, errp);

    if (!ret) {
        return false;
    }
    if (!JSON_NODE_HOLDS_VALUE(ret) ||
        json_node_get_value_type(ret) != G_TYPE_INT64) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "QMP: %s %s is not an integer", path, property);
        return false;
    }
    *value = json_node_get_int(ret);
    return true;
}
