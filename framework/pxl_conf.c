/*
 * pxl_conf.c - loads the app file and checks it against one key table,
 * and checks a plugin's settings with the same code. Owns struct
 * pxl_config and its defaults. It does not open plugins or sockets: a
 * config that loads here is only a promise the others check.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "pxl/pxl.h"
#include "pxl_allow.h"
#include "pxl_conf.h"
#include "pxl_cron.h"
#include "pxl_json.h"
#include "pxl_log.h"

#define MiB (1024 * 1024)

enum key_type {
        KEY_INT,
        KEY_BOOL,
        KEY_STRING,
        KEY_GROUP,
        KEY_LIST,     /* plugins */
        KEY_STRINGS,  /* a list or array of strings, stored NULL-terminated */
        KEY_INT_AUTO, /* an integer, or the string "auto" (stored as 0) */
};

typedef const char *key_check_fn(struct pxl_config *conf, const char *value);

/*
 * One key. Rows are written with designated initialisers; what a row
 * leaves out is 0 or NULL. Every key of a type with a value has its
 * default here and nowhere else: it is stored (or given to check)
 * before the file is read.
 */
struct conf_key {
        const char *name;
        enum key_type type;
        bool required;       /* the file must set it (plugin settings) */
        long long min, max;  /* integers: the value; strings: the length */
        size_t offset;       /* of the field the value is stored in */
        size_t width;        /* sizeof the field; 0 = not stored */
        key_check_fn *check; /* for strings: NULL or returns an error text */
        union {
                const char *s; /* KEY_STRING; NULL = no default */
                long long i;   /* KEY_INT, KEY_INT_AUTO */
                bool b;        /* KEY_BOOL */
        } def;
        const char *unset; /* -T's text for a key without a default value */
        const char *help;
};

static key_check_fn check_log_level, check_log_format, check_log_dest,
        check_log_facility, check_path, check_allow, check_secret_encoding,
        check_algorithm, check_visible_to, check_driver;

/* Where a key's value goes in struct pxl_config. */
#define F(field)                                                               \
        .offset = offsetof(struct pxl_config, field),                          \
        .width = sizeof(((struct pxl_config *)0)->field)

/*
 * The one table of keys: validation, defaults, -T and pxl.cfg(5) come
 * from it. Rows stay packed, a few lines each.
 */
/* clang-format off */
static const struct conf_key conf_keys[] = {
        {.name = "name", .type = KEY_STRING, .min = 1, .max = 64, F(name),
         .help = "app name, used in logs and Redis channel names (required)"},
        {.name = "raw_text", .type = KEY_BOOL, F(raw_text), .def.b = false,
         .help = "send text messages to the raw handler instead of the JSON "
                 "router"},
        {.name = "connected_frame", .type = KEY_BOOL, F(connected_frame),
         .def.b = true,
         .help = "greet each client with system/connected (and "
                 "auth/authenticated); false for apps that speak their own "
                 "protocol"},
        {.name = "shutdown_timeout", .type = KEY_INT, .min = 0, .max = 3600,
         F(shutdown_timeout), .def.i = 5,
         .help = "seconds to wait for clients to answer the 1001 close at "
                 "shutdown"},
        {.name = "shutdown_spread", .type = KEY_INT, .min = 0, .max = 3600,
         F(shutdown_spread), .def.i = 0,
         .help = "seconds over which the 1001 closes of a shutdown go out, "
                 "oldest clients first, so that they do not all reconnect at "
                 "once (0 = all at once)"},
        {.name = "workers", .type = KEY_INT_AUTO, .min = 1, .max = 256,
         F(workers), .def.i = 1,
         .help = "worker processes, each with its own event loop and "
                 "listening socket (SO_REUSEPORT); \"auto\" = one per online "
                 "CPU; more than 1 needs redis"},
        {.name = "plugins", .type = KEY_LIST,
         .help = "list of plugins: a name (looked up in PXL_PLUGIN_PATH, then "
                 "the plugin directory), a path relative to the app file, or "
                 "a group { path = ...; settings = { ... }; }"},
        {.name = "listen", .type = KEY_GROUP,
         .help = "where to accept WebSocket clients"},
        {.name = "listen.host", .type = KEY_STRING, .min = 1, .max = 255,
         F(host), .def.s = "0.0.0.0", .help = "address to bind"},
        {.name = "listen.port", .type = KEY_INT, .min = 0, .max = 65535,
         F(port), .def.i = 8080,
         .help = "TCP port (0 = any free port, logged at start)"},
        {.name = "listen.path", .type = KEY_STRING, .min = 1, .max = 255,
         F(path), .check = check_path, .def.s = "/ws",
         .help = "request path of the WebSocket endpoint"},
        {.name = "listen.backlog", .type = KEY_INT, .min = 1, .max = 65535,
         F(backlog), .def.i = 511, .help = "listen(2) backlog"},
        {.name = "listen.origins", .type = KEY_STRINGS, .min = 1, .max = 4096,
         F(origins), .unset = "any",
         .help = "allowed Origin header values (exact match); others get 403"},
        {.name = "listen.tls", .type = KEY_GROUP,
         .help = "serve wss:// (TLS) instead of ws://"},
        {.name = "listen.tls.certificate", .type = KEY_STRING, .min = 1,
         .max = 4095, F(tls_cert),
         .help = "PEM certificate chain, relative to the app file"},
        {.name = "listen.tls.key", .type = KEY_STRING, .min = 1, .max = 4095,
         F(tls_key), .help = "PEM private key, relative to the app file"},
        {.name = "limits", .type = KEY_GROUP,
         .help = "limits on what clients send"},
        {.name = "limits.max_message_size", .type = KEY_INT, .min = 1,
         .max = 1LL << 31, F(limits.max_message_size), .def.i = 4 * MiB,
         .help = "largest message in bytes (inclusive); larger closes with "
                 "1009"},
        {.name = "limits.max_frame_size", .type = KEY_INT, .min = 1,
         .max = 1LL << 31, F(limits.max_frame_size), .def.i = 4 * MiB,
         .help = "largest frame payload in bytes (inclusive); larger closes "
                 "with 1009"},
        {.name = "limits.max_json_depth", .type = KEY_INT, .min = 1,
         .max = 1024, F(limits.max_json_depth), .def.i = 64,
         .help = "deepest JSON nesting accepted (the outer object is 1)"},
        {.name = "limits.handshake_timeout", .type = KEY_INT, .min = 1,
         .max = 3600, F(limits.handshake_timeout), .def.i = 10,
         .help = "seconds from accept a client has to complete the HTTP "
                 "upgrade"},
        {.name = "limits.max_header_size", .type = KEY_INT, .min = 256,
         .max = 1 << 20, F(limits.max_header_size), .def.i = 8192,
         .help = "largest upgrade request head in bytes; larger gets 400"},
        {.name = "limits.max_connections", .type = KEY_INT, .min = 1,
         .max = 1 << 24, F(limits.max_connections), .def.i = 10000,
         .help = "open WebSocket connections per worker; more get 503"},
        {.name = "limits.max_output_bytes", .type = KEY_INT, .min = 1024,
         .max = 1LL << 32, F(limits.max_output_bytes), .def.i = 8 * MiB,
         .help = "bytes queued to one client before it is closed with 4009 "
                 "(one larger message passes when nothing else is queued)"},
        {.name = "limits.max_handshakes", .type = KEY_INT, .min = 1,
         .max = 1 << 24, F(limits.max_handshakes), .def.i = 1000,
         .help = "connections still in their HTTP upgrade per worker; a new "
                 "one beyond it drops the oldest"},
        {.name = "limits.max_connections_per_ip", .type = KEY_INT, .min = 0,
         .max = 1 << 24, F(limits.max_connections_per_ip), .def.i = 1000,
         .help = "connections (upgrading ones too) from one address per "
                 "worker; more get 503 (0 = no limit)"},
        {.name = "limits.rate", .type = KEY_INT, .min = 0, .max = 1000000,
         F(limits.rate), .def.i = 1000,
         .help = "messages per second a client may send on average (0 = no "
                 "limit); beyond it: the error Rate limit exceeded"},
        {.name = "limits.burst", .type = KEY_INT, .min = 1, .max = 1000000,
         F(limits.burst), .def.i = 2000,
         .help = "messages a client may send at once beyond the rate; that "
                 "many refused in a row close it with 4008"},
        {.name = "limits.max_metadata_size", .type = KEY_INT, .min = 0,
         .max = 1 << 30, F(limits.max_metadata_size), .def.i = 65536,
         .help = "bytes of metadata (keys and JSON values) one client may "
                 "carry"},
        {.name = "limits.max_metadata_entry_size", .type = KEY_INT, .min = 0,
         .max = 1 << 30, F(limits.max_metadata_entry_size), .def.i = 16384,
         .help = "bytes of one metadata key and its JSON value"},
        {.name = "static", .type = KEY_GROUP,
         .help = "serve the files of a folder over plain HTTP on the "
                 "WebSocket listener (GET and HEAD)"},
        {.name = "static.root", .type = KEY_STRING, .min = 1, .max = 4095,
         F(static_root),
         .help = "the folder, relative to the app file (required in the "
                 "group)"},
        {.name = "static.max_file_size", .type = KEY_INT, .min = 1,
         .max = 1LL << 30, F(static_max_file_size), .def.i = 8 * MiB,
         .help = "largest file served, in bytes (read whole into the "
                 "reply)"},
        {.name = "auth", .type = KEY_GROUP,
         .help = "authentication of upgrade requests"},
        {.name = "auth.jwt", .type = KEY_GROUP,
         .help = "JWT bearer tokens, checked before the 101"},
        {.name = "auth.jwt.secret", .type = KEY_STRING, .min = 1, .max = 4096,
         F(auth.secret), .help = "HMAC secret for HS256/HS384/HS512"},
        {.name = "auth.jwt.secret_encoding", .type = KEY_STRING, .min = 1,
         .max = 16, .check = check_secret_encoding, .def.s = "raw",
         .help = "raw, or base64url (decoded first, as the Node.js framework "
                 "does)"},
        {.name = "auth.jwt.public_key", .type = KEY_STRING, .min = 1,
         .max = 4095, F(auth.public_key),
         .help = "PEM public key file for RS256/RS384/RS512/ES256/ES384/ES512"},
        {.name = "auth.jwt.algorithm", .type = KEY_STRING, .min = 1, .max = 16,
         F(auth.algorithm), .check = check_algorithm, .def.s = "HS256",
         .help = "the one algorithm accepted; tokens naming another (or none) "
                 "get 401"},
        {.name = "auth.jwt.required", .type = KEY_BOOL, F(auth.required),
         .def.b = false, .help = "refuse upgrades without a token (401)"},
        {.name = "auth.jwt.issuer", .type = KEY_STRING, .min = 1, .max = 1024,
         F(auth.issuer), .help = "required iss claim"},
        {.name = "auth.jwt.audience", .type = KEY_STRING, .min = 1, .max = 1024,
         F(auth.audience),
         .help = "required aud claim (a string, or one of an array)"},
        {.name = "auth.jwt.leeway", .type = KEY_INT, .min = 0, .max = 3600,
         F(auth.leeway), .def.i = 0,
         .help = "seconds of clock skew allowed on exp and nbf"},
        {.name = "rooms", .type = KEY_GROUP, .help = "rooms"},
        {.name = "rooms.multiple", .type = KEY_BOOL, F(rooms.multiple),
         .def.b = true,
         .help = "a client may be in several rooms; false: joining leaves the "
                 "current one"},
        {.name = "rooms.max_name_length", .type = KEY_INT, .min = 1,
         .max = 65535, F(rooms.max_name_length), .def.i = 128,
         .help = "longest room name in bytes"},
        {.name = "rooms.max_per_client", .type = KEY_INT, .min = 1,
         .max = 65535, F(rooms.max_per_client), .def.i = 64,
         .help = "rooms one client may be in at once"},
        {.name = "rooms.notify_members", .type = KEY_BOOL,
         F(rooms.notify_members), .def.b = false,
         .help = "tell members when a client joins or leaves their room"},
        {.name = "rooms.members_visible_to", .type = KEY_STRING, .min = 1,
         .max = 16, .check = check_visible_to, .def.s = "all",
         .help = "all, or members (who may ask system/roomMembers)"},
        {.name = "rooms.max_member_field_length", .type = KEY_INT, .min = 1,
         .max = 1 << 20, F(rooms.max_member_field_length), .def.i = 256,
         .help = "longest userId (as text), userType or username a joinRoom "
                 "may give, in bytes"},
        {.name = "rooms.history", .type = KEY_GROUP,
         .help = "keep each room's last messages: frames carry \"pos\", "
                 "members may ask system/history (one process without redis "
                 "for now)"},
        {.name = "rooms.history.size", .type = KEY_INT, .min = 1,
         .max = 100000, F(rooms.history_size), .def.i = 100,
         .help = "messages kept per room"},
        {.name = "rooms.history.ttl", .type = KEY_INT, .min = 1,
         .max = 2592000, F(rooms.history_ttl), .def.i = 600,
         .help = "seconds a message is kept"},
        {.name = "resume", .type = KEY_GROUP,
         .help = "keep a disconnected client's session: system/connected "
                 "carries a resumeToken that system/resume takes back (one "
                 "process without redis for now)"},
        {.name = "resume.ttl", .type = KEY_INT, .min = 1, .max = 86400,
         F(resume.ttl), .def.i = 120,
         .help = "seconds a disconnected client's session is kept"},
        {.name = "resume.secret", .type = KEY_STRING, .min = 16, .max = 4096,
         F(resume.secret),
         .help = "HMAC key of the resume tokens (random per start when "
                 "absent)"},
        {.name = "presence", .type = KEY_GROUP, .help = "presence lists"},
        {.name = "presence.client_list", .type = KEY_BOOL,
         F(presence_client_list), .def.b = false,
         .help = "send every client the clientList frame on each change "
                 "(O(clients) frames)"},
        {.name = "presence.interval", .type = KEY_INT, .min = 0, .max = 60000,
         F(presence_interval), .def.i = 250,
         .help = "milliseconds: after a clientList frame, changes within this "
                 "time are coalesced into one more frame (0 = a frame per "
                 "change)"},
        {.name = "presence.include_payload", .type = KEY_BOOL,
         F(presence_include_payload), .def.b = false,
         .help = "include each client's JWT payload in clientList"},
        {.name = "inactivity", .type = KEY_GROUP,
         .help = "closing idle clients"},
        {.name = "inactivity.max_idle", .type = KEY_INT, .min = 0,
         .max = 86400 * 365, F(max_idle), .def.i = 0,
         .help = "seconds without a message or ping before close 4000 (0 = "
                 "never)"},
        {.name = "inactivity.check_interval", .type = KEY_INT, .min = 1,
         .max = 86400, F(check_interval), .def.i = 60,
         .help = "seconds between idle checks"},
        {.name = "heartbeat", .type = KEY_GROUP, .help = "dead-peer detection"},
        {.name = "heartbeat.interval", .type = KEY_INT, .min = 0, .max = 86400,
         F(heartbeat_interval), .def.i = 0,
         .help = "seconds between server pings (0 = off)"},
        {.name = "heartbeat.timeout", .type = KEY_INT, .min = 1, .max = 86400,
         F(heartbeat_timeout), .def.i = 30,
         .help = "seconds to wait for a pong before close 4001"},
        {.name = "metrics", .type = KEY_GROUP, .help = "live metrics"},
        {.name = "metrics.log_interval", .type = KEY_INT, .min = 0,
         .max = 86400, F(metrics_log_interval), .def.i = 0,
         .help = "seconds between metrics log lines (0 = never)"},
        {.name = "metrics.path", .type = KEY_STRING, .min = 1, .max = 255,
         F(endpoints.metrics_path), .check = check_path, .def.s = "/metrics",
         .help = "request path of the Prometheus metrics (plain HTTP GET "
                 "on the listener, or on admin when configured)"},
        {.name = "metrics.allow", .type = KEY_STRINGS, .min = 1, .max = 64,
         F(endpoints.metrics_allow), .check = check_allow,
         .unset = "loopback",
         .help = "client addresses allowed to read metrics: addresses or "
                 "CIDR prefixes, IPv4 or IPv6; others get 403 (default: "
                 "127.0.0.0/8 and ::1)"},
        {.name = "health", .type = KEY_GROUP,
         .help = "the health check for load balancers and probes"},
        {.name = "health.path", .type = KEY_STRING, .min = 1, .max = 255,
         F(endpoints.health_path), .check = check_path, .def.s = "/health",
         .help = "request path of the health check: 200 while serving, 503 "
                 "while draining or while a required dependency is down"},
        {.name = "health.allow", .type = KEY_STRINGS, .min = 1, .max = 64,
         F(endpoints.health_allow), .check = check_allow, .unset = "any",
         .help = "client addresses allowed to check health: addresses or "
                 "CIDR prefixes; others get 403"},
        {.name = "admin", .type = KEY_GROUP,
         .help = "serve health and metrics only on a listener of their own "
                 "(plain HTTP, one request per connection)"},
        {.name = "admin.host", .type = KEY_STRING, .min = 1, .max = 255,
         F(endpoints.admin_host), .def.s = "127.0.0.1",
         .help = "address of the admin listener"},
        {.name = "admin.port", .type = KEY_INT, .min = 0, .max = 65535,
         F(endpoints.admin_port), .def.i = 9090,
         .help = "TCP port of the admin listener (0 = any free port, "
                 "logged at start)"},
        {.name = "database", .type = KEY_GROUP,
         .help = "the app's database, reached from every handler "
                 "(pxl_db_query)"},
        {.name = "database.driver", .type = KEY_STRING, .min = 1, .max = 16,
         F(database.driver),
         .check = check_driver, .def.s = "sqlite",
         .help = "sqlite (an embedded file, no server) or postgresql"},
        {.name = "database.path", .type = KEY_STRING, .min = 1, .max = 4095,
         F(database.path), .unset = "NAME.db",
         .help = "sqlite: the database file, relative to the app file; "
                 "created when missing"},
        {.name = "database.url", .type = KEY_STRING, .min = 1, .max = 4096,
         F(database.url),
         .help = "postgresql: a libpq connection string or URL "
                 "(required); a numeric hostaddr avoids a blocking lookup"},
        {.name = "database.password_env", .type = KEY_STRING, .min = 1,
         .max = 255, F(database.password_env),
         .help = "postgresql: environment variable holding the password"},
        {.name = "database.password_file", .type = KEY_STRING, .min = 1,
         .max = 4095, F(database.password_file),
         .help = "postgresql: file holding the password, relative to the "
                 "app file"},
        {.name = "database.pool_size", .type = KEY_INT, .min = 1, .max = 256,
         F(database.pool_size), .def.i = 4,
         .help = "postgresql: connections per worker"},
        {.name = "database.connect_timeout", .type = KEY_INT, .min = 1,
         .max = 3600, F(database.connect_timeout), .def.i = 5,
         .help = "postgresql: seconds for a connection to open"},
        {.name = "database.statement_timeout", .type = KEY_INT, .min = 0,
         .max = 86400000, F(database.statement_timeout), .def.i = 30000,
         .help = "postgresql: milliseconds a statement may run (0 = no "
                 "limit)"},
        {.name = "database.retry_max_delay", .type = KEY_INT, .min = 1,
         .max = 3600, F(database.retry_max_delay), .def.i = 5,
         .help = "postgresql: cap in seconds of the reconnect backoff (0.1 s "
                 "doubling)"},
        {.name = "database.required", .type = KEY_BOOL,
         F(database.required), .def.b = false,
         .help = "postgresql: refuse to start while the server cannot be "
                 "reached; false: serve, fail queries with \"database "
                 "unavailable\" and keep retrying"},
        {.name = "database.busy_timeout", .type = KEY_INT, .min = 0,
         .max = 3600000, F(database.busy_timeout), .def.i = 5000,
         .help = "sqlite: milliseconds a statement waits for another "
                 "connection's lock"},
        {.name = "database.readers", .type = KEY_INT, .min = 1, .max = 64,
         F(database.readers), .def.i = 2,
         .help = "sqlite: reader threads per worker (one more thread "
                 "writes)"},
        {.name = "database.max_pending", .type = KEY_INT, .min = 1,
         .max = 1000000, F(database.max_pending), .def.i = 10000,
         .help = "queries waiting or running per worker; past it a query "
                 "fails with \"database busy\""},
        {.name = "database.migrations", .type = KEY_STRING, .min = 1,
         .max = 4095, F(database.migrations),
         .help = "folder of NNN_name.sql files, relative to the app file, "
                 "applied in name order at start (and by --migrate)"},
        {.name = "queue", .type = KEY_GROUP,
         .help = "background jobs (pxl_job_add), run by the processors "
                 "plugins declare"},
        {.name = "queue.path", .type = KEY_STRING, .min = 1, .max = 4095,
         F(queue.path), .unset = "NAME-jobs.db",
         .help = "SQLite file for the jobs when the app has no SQLite "
                 "database (relative to the app file); with one, jobs "
                 "live in it"},
        {.name = "queue.stalled_after", .type = KEY_INT, .min = 1,
         .max = 86400, F(queue.stalled_after), .def.i = 30,
         .help = "seconds after which a job whose worker stopped renewing "
                 "it (it died) runs again"},
        {.name = "queue.timeout", .type = KEY_INT, .min = 1,
         .max = 86400000, F(queue.timeout), .def.i = 300000,
         .help = "milliseconds a job may run before it fails (and is "
                 "retried), unless its processor or options say"},
        {.name = "queue.max_payload", .type = KEY_INT, .min = 2,
         .max = 67108864, F(queue.max_payload), .def.i = 65536,
         .help = "bytes of a job's payload as JSON; pxl_job_add refuses "
                 "more"},
        {.name = "queue.keep_completed", .type = KEY_INT, .min = 0,
         .max = 100000000, F(queue.keep_completed), .def.i = 1000,
         .help = "completed jobs kept per queue (newest first), unless a "
                 "job's options say"},
        {.name = "queue.poll_interval", .type = KEY_INT, .min = 10,
         .max = 60000, F(queue.poll_interval), .def.i = 100,
         .help = "milliseconds between a worker's looks for jobs that "
                 "other processes added"},
        {.name = "queue.threads", .type = KEY_INT, .min = 1, .max = 64,
         F(queue.threads), .def.i = 2,
         .help = "threads per worker that run blocking processors (only "
                 "when a plugin declares one): jobs of theirs at once"},
        {.name = "queue.rate_limits", .type = KEY_STRINGS, .min = 3,
         .max = 100, F(queue.rate_limits), .unset = "none",
         .help = "[\"QUEUE=N\", ...]: at most N jobs of QUEUE start per "
                 "second, over every worker sharing the jobs"},
        {.name = "queue.schedules", .type = KEY_LIST,
         .help = "repeatable jobs: a list of groups { name = \"N\"; queue "
                 "= \"Q\"; every = SECONDS; or cron = \"M H DOM MON DOW\" "
                 "(UTC); payload = \"JSON\"; }, each added once per tick "
                 "for every worker sharing the jobs"},
        {.name = "redis", .type = KEY_GROUP,
         .help = "coordinate workers and machines through Redis pub/sub"},
        {.name = "redis.host", .type = KEY_STRING, .min = 1, .max = 255,
         F(redis.host), .def.s = "127.0.0.1",
         .help = "Redis server address (TCP, no TLS)"},
        {.name = "redis.port", .type = KEY_INT, .min = 1, .max = 65535,
         F(redis.port), .def.i = 6379, .help = "Redis server port"},
        {.name = "redis.socket", .type = KEY_STRING, .min = 1, .max = 107,
         F(redis.socket),
         .help = "unix socket path, relative to the app file; replaces host "
                 "and port"},
        {.name = "redis.user", .type = KEY_STRING, .min = 1, .max = 255,
         F(redis.user),
         .help = "ACL user name (AUTH user password); needs password"},
        {.name = "redis.password", .type = KEY_STRING, .min = 1, .max = 4096,
         F(redis.password), .help = "password sent with AUTH"},
        {.name = "redis.database", .type = KEY_INT, .min = 0, .max = 65535,
         F(redis.database), .def.i = 0,
         .help = "database number (SELECT) for membership keys"},
        {.name = "redis.required", .type = KEY_BOOL, F(redis.required),
         .def.b = false,
         .help = "refuse to start while Redis cannot be reached; false: serve "
                 "local clients and keep retrying"},
        {.name = "redis.connect_timeout", .type = KEY_INT, .min = 1,
         .max = 3600, F(redis.connect_timeout), .def.i = 2,
         .help = "seconds for a connection to Redis to open"},
        {.name = "redis.retry_max_delay", .type = KEY_INT, .min = 1,
         .max = 3600, F(redis.retry_max_delay), .def.i = 5,
         .help = "cap in seconds of the reconnect backoff (0.1 s doubling)"},
        {.name = "redis.heartbeat_interval", .type = KEY_INT, .min = 1,
         .max = 3600, F(redis.heartbeat_interval), .def.i = 1,
         .help = "seconds between a worker's heartbeats in Redis"},
        {.name = "redis.dead_after", .type = KEY_INT, .min = 2, .max = 86400,
         F(redis.dead_after), .def.i = 5,
         .help = "seconds without a heartbeat after which a worker's clients "
                 "leave the cluster (must exceed heartbeat_interval)"},
        {.name = "log", .type = KEY_GROUP, .help = "logging"},
        {.name = "log.level", .type = KEY_STRING, .min = 1, .max = 16,
         .check = check_log_level, .def.s = "info",
         .help = "err, warn, notice, info or debug"},
        {.name = "log.format", .type = KEY_STRING, .min = 1, .max = 16,
         .check = check_log_format, .def.s = "logfmt",
         .help = "logfmt or json"},
        {.name = "log.messages", .type = KEY_BOOL, F(log_messages),
         .def.b = false,
         .help = "at level debug, log each message's type, action, size "
                 "and requestId (never its data)"},
        {.name = "log.destination", .type = KEY_STRING, .min = 1, .max = 16,
         .check = check_log_dest, .def.s = "stderr",
         .help = "stderr, file (log.file) or syslog (log.syslog_socket)"},
        {.name = "log.file", .type = KEY_STRING, .min = 1, .max = 4095,
         F(log_file), .unset = "none",
         .help = "the file lines are appended to with destination = file "
                 "(relative to the app file); SIGUSR1 reopens it"},
        {.name = "log.syslog_socket", .type = KEY_STRING, .min = 1,
         .max = 107, F(log_syslog_socket), .def.s = "/dev/log",
         .help = "the unix datagram socket syslog reads, with "
                 "destination = syslog"},
        {.name = "log.syslog_facility", .type = KEY_STRING, .min = 1,
         .max = 16, .check = check_log_facility, .def.s = "daemon",
         .help = "syslog facility: daemon, user, local0 .. local7, ..."},
        {.name = "log.access", .type = KEY_BOOL, F(log_access), .def.b = true,
         .help = "at level info, a line per client that leaves: address, "
                 "duration, messages and bytes each way, close code"},
};
/* clang-format on */

static const char *check_secret_encoding(struct pxl_config *conf, const char *v)
{
        if (strcmp(v, "raw") == 0)
                conf->auth.secret_base64url = false;
        else if (strcmp(v, "base64url") == 0)
                conf->auth.secret_base64url = true;
        else
                return "must be raw or base64url";
        return NULL;
}

static const char *check_algorithm(struct pxl_config *conf, const char *v)
{
        static const char *const algs[] = {"HS256", "HS384", "HS512",
                                           "RS256", "RS384", "RS512",
                                           "ES256", "ES384", "ES512"};

        (void)conf;
        for (size_t i = 0; i < sizeof(algs) / sizeof(*algs); i++)
                if (strcmp(v, algs[i]) == 0)
                        return NULL;
        return "must be one of HS256, HS384, HS512, RS256, RS384, RS512, "
               "ES256, ES384, ES512";
}

static const char *check_visible_to(struct pxl_config *conf, const char *v)
{
        if (strcmp(v, "all") == 0)
                conf->rooms.members_visible_to_all = true;
        else if (strcmp(v, "members") == 0)
                conf->rooms.members_visible_to_all = false;
        else
                return "must be all or members";
        return NULL;
}

static const char *check_log_level(struct pxl_config *conf, const char *v)
{
        int level = pxl_log_level_from_name(v);

        if (level < 0)
                return "must be one of err, warn, notice, info, debug";
        conf->log_level = level;
        return NULL;
}

static const char *check_log_format(struct pxl_config *conf, const char *v)
{
        if (strcmp(v, "logfmt") == 0)
                conf->log_format = PXL_LOG_LOGFMT;
        else if (strcmp(v, "json") == 0)
                conf->log_format = PXL_LOG_JSON;
        else
                return "must be logfmt or json";
        return NULL;
}

static const char *check_log_dest(struct pxl_config *conf, const char *v)
{
        if (strcmp(v, "stderr") == 0)
                conf->log_dest = PXL_LOG_TO_STDERR;
        else if (strcmp(v, "file") == 0)
                conf->log_dest = PXL_LOG_TO_FILE;
        else if (strcmp(v, "syslog") == 0)
                conf->log_dest = PXL_LOG_TO_SYSLOG;
        else
                return "must be stderr, file or syslog";
        return NULL;
}

static const char *check_log_facility(struct pxl_config *conf, const char *v)
{
        int f = pxl_log_facility_from_name(v);

        if (f < 0)
                return "must be one of kern, user, mail, daemon, auth, "
                       "syslog, lpr, news, uucp, cron, authpriv, ftp, "
                       "local0 .. local7";
        conf->log_facility = f;
        return NULL;
}

static const char *check_driver(struct pxl_config *conf, const char *v)
{
        if (strcmp(v, "postgresql") == 0)
                conf->database.postgresql = true;
        else if (strcmp(v, "sqlite") == 0)
                conf->database.postgresql = false;
        else
                return "must be sqlite or postgresql";
        return NULL;
}

static const char *check_path(struct pxl_config *conf, const char *v)
{
        (void)conf;
        if (v[0] != '/')
                return "must start with '/'";
        if (strpbrk(v, "?# \t") != NULL)
                return "must be a plain path (no query, fragment or spaces)";
        return NULL;
}

/* An allow list entry: an address or a CIDR prefix. */
static const char *check_allow(struct pxl_config *conf, const char *v)
{
        struct pxl_allow_net net;
        const char *why = NULL;

        (void)conf;
        return pxl_allow_parse(v, &net, &why) < 0 ? why : NULL;
}

/* One pass of checking: the app file, or a plugin's settings group. */
struct loader {
        struct pxl_config *conf; /* given to check; NULL for a plugin */
        char *base;              /* the keys' offsets are into it */
        const struct conf_key *keys;
        size_t nkeys;
        size_t skip; /* a key's name in messages starts with skip bytes
                      * ("plugins[1].settings.") its table name lacks */
        struct pxl_str *errors;
        const char *name; /* file name for messages */
        const char *what; /* before a value in messages: "" or "default " */
        bool overriding;  /* applying the command line's overrides */
        int nerrors;
};

/* The hook of a setting an override made (-o), so messages say so. */
static char from_command_line;

/*
 * A problem (to ld->errors) or warning (to the config's warnings) at
 * setting s: its file and line, "command line" for an override, or the
 * app file alone for a key that is missing altogether.
 */
static void report(struct loader *ld, struct pxl_str *to,
                   const config_setting_t *s, const char *key, const char *fmt,
                   va_list ap)
{
        const char *file = NULL;
        int line = 0;

        for (const config_setting_t *p = s; p != NULL && file == NULL;
             p = config_setting_parent(p))
                if (config_setting_get_hook(p) == &from_command_line)
                        file = "command line";
        if (ld->overriding)
                file = "command line";
        if (file == NULL && s != NULL) {
                file = config_setting_source_file(s);
                line = (int)config_setting_source_line(s);
        }
        if (s == NULL && key == NULL)
                key = "config";
        (void)pxl_str_vreport(to, file != NULL ? file : ld->name, line, key,
                              fmt, ap);
}

static void conf_error(struct loader *ld, const config_setting_t *s,
                       const char *key, const char *fmt, ...) PXL_PRINTF(4, 5);

static void conf_error(struct loader *ld, const config_setting_t *s,
                       const char *key, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        report(ld, ld->errors, s, key, fmt, ap);
        va_end(ap);
        ld->nerrors++;
}

/* Not an error: -t still passes, but says what will surprise. The text
 * starts with "warning: ". */
static void conf_warning(struct loader *ld, const char *key, const char *fmt,
                         ...) PXL_PRINTF(3, 4);

static void conf_warning(struct loader *ld, const char *key, const char *fmt,
                         ...)
{
        va_list ap;

        va_start(ap, fmt);
        report(ld, &ld->conf->warnings, config_lookup(&ld->conf->cfg, key),
               key, fmt, ap);
        va_end(ap);
}

static const struct conf_key *find_key(const struct loader *ld,
                                       const char *name)
{
        for (size_t i = 0; i < ld->nkeys; i++)
                if (strcmp(ld->keys[i].name, name) == 0)
                        return &ld->keys[i];
        return NULL;
}

static const char *type_name(int t)
{
        switch (t) {
        case CONFIG_TYPE_GROUP:
                return "a group";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "an integer";
        case CONFIG_TYPE_FLOAT:
                return "a float";
        case CONFIG_TYPE_STRING:
                return "a string";
        case CONFIG_TYPE_BOOL:
                return "a boolean";
        case CONFIG_TYPE_ARRAY:
                return "an array";
        case CONFIG_TYPE_LIST:
                return "a list";
        default:
                return "something else";
        }
}

static const char *const key_type_names[] = {
        "integer", "boolean", "string", "group", "list", "strings", "int|auto"};

static void store_int(void *field, size_t width, long long v)
{
        switch (width) {
        case sizeof(uint64_t):
                *(uint64_t *)field = (uint64_t)v;
                break;
        case sizeof(unsigned):
                *(unsigned *)field = (unsigned)v;
                break;
        default:
                abort(); /* a table entry with a field we cannot store */
        }
}

static void free_strings(char **v)
{
        for (size_t i = 0; v != NULL && v[i] != NULL; i++)
                free(v[i]);
        free(v);
}

static char *dup_or_oom(struct loader *ld, const char *s)
{
        char *d = strdup(s);

        if (d == NULL)
                conf_error(ld, NULL, NULL, "out of memory");
        return d;
}

/*
 * The checks a value passes, whether the file gives it or the table's
 * default does, and its store. s is where the file set it (NULL for a
 * default).
 */
static void set_int(struct loader *ld, const config_setting_t *s,
                    const struct conf_key *k, const char *key, long long v)
{
        if (v < k->min || v > k->max) {
                conf_error(ld, s, key, "%s%lld is out of range %lld..%lld",
                           ld->what, v, k->min, k->max);
                return;
        }
        if (k->width != 0)
                store_int(ld->base + k->offset, k->width, v);
}

static void set_bool(struct loader *ld, const struct conf_key *k, bool v)
{
        if (k->width != 0)
                *(bool *)(ld->base + k->offset) = v;
}

static void set_string(struct loader *ld, const config_setting_t *s,
                       const struct conf_key *k, const char *key, const char *v)
{
        size_t len = strlen(v);
        const char *why;

        if ((long long)len < k->min || (long long)len > k->max) {
                conf_error(ld, s, key,
                           "%s\"%s\" must be %lld to %lld characters", ld->what,
                           v, k->min, k->max);
                return;
        }
        if (k->check != NULL && (why = k->check(ld->conf, v)) != NULL) {
                conf_error(ld, s, key, "%s\"%s\" %s", ld->what, v, why);
                return;
        }
        if (k->width != 0) {
                char **dst = (char **)(ld->base + k->offset);
                char *copy = dup_or_oom(ld, v);

                if (copy != NULL) {
                        free(*dst);
                        *dst = copy;
                }
        }
}

/* Every default of the table, through the checks a file's value passes. */
static void apply_defaults(struct loader *ld, const char *prefix)
{
        const char *what = ld->what;

        ld->what = "default ";
        for (size_t i = 0; i < ld->nkeys; i++) {
                const struct conf_key *k = &ld->keys[i];
                char key[256];

                /* Required: no default, the file sets it. Not stored:
                 * nothing to apply (or a row the table got wrong). */
                if (k->required || (k->width == 0 && k->check == NULL))
                        continue;
                snprintf(key, sizeof(key), "%s%s%s", prefix,
                         prefix[0] != '\0' ? "." : "", k->name);
                switch (k->type) {
                case KEY_INT:
                case KEY_INT_AUTO:
                        set_int(ld, NULL, k, key, k->def.i);
                        break;
                case KEY_BOOL:
                        set_bool(ld, k, k->def.b);
                        break;
                case KEY_STRING:
                        if (k->def.s != NULL)
                                set_string(ld, NULL, k, key, k->def.s);
                        break;
                case KEY_STRINGS:
                case KEY_GROUP:
                case KEY_LIST:
                        break;
                }
        }
        ld->what = what;
}

/*
 * dir/rel without "." segments and doubled slashes ("./x.so" in "."
 * is "./x.so", not "././x.so"; in "/srv/app" it is "/srv/app/x.so").
 * ".." stays: dropping it lexically is wrong across a symlink. A result
 * relative to the working directory keeps a "./" start, so dlopen takes
 * it for a path, not a name to search.
 */
static void join_path(char *buf, size_t cap, const char *dir, const char *rel)
{
        char whole[PATH_MAX];
        size_t len = 0;
        const char *seg = whole, *end;

        if (rel[0] == '/' || dir == NULL)
                snprintf(whole, sizeof(whole), "%s", rel);
        else
                snprintf(whole, sizeof(whole), "%s/%s", dir, rel);
        buf[0] = '\0';
        if (whole[0] == '/')
                len = (size_t)snprintf(buf, cap, "/");
        else
                len = (size_t)snprintf(buf, cap, ".");
        for (; *seg != '\0'; seg = *end != '\0' ? end + 1 : end) {
                end = strchrnul(seg, '/');
                if (end == seg || (end - seg == 1 && seg[0] == '.'))
                        continue;
                if (len < cap)
                        len += (size_t)snprintf(
                                buf + len, cap - len, "%s%.*s",
                                buf[len - 1] == '/' ? "" : "/",
                                (int)(end - seg), seg);
        }
}

/* A bare name is looked up; anything with a '/' or ".so" is a path. */
static char *resolve_plugin(struct loader *ld, const config_setting_t *s,
                            const char *key, const char *entry)
{
        size_t n = strlen(entry);
        char buf[PATH_MAX];
        const char *env;

        if (n == 0) {
                conf_error(ld, s, key, "empty plugin path");
                return NULL;
        }
        if (strchr(entry, '/') != NULL ||
            (n > 3 && strcmp(entry + n - 3, ".so") == 0)) {
                join_path(buf, sizeof(buf), ld->conf->dir, entry);
                return dup_or_oom(ld, buf);
        }
        env = getenv("PXL_PLUGIN_PATH");
        while (env != NULL && *env != '\0') {
                const char *end = strchr(env, ':');
                size_t len = end ? (size_t)(end - env) : strlen(env);

                if (len > 0) {
                        snprintf(buf, sizeof(buf), "%.*s/%s.so", (int)len, env,
                                 entry);
                        if (access(buf, R_OK) == 0)
                                return dup_or_oom(ld, buf);
                }
                env = end ? end + 1 : NULL;
        }
        snprintf(buf, sizeof(buf), "%s/%s.so", PXL_PLUGINDIR, entry);
        if (access(buf, R_OK) == 0)
                return dup_or_oom(ld, buf);
        conf_error(ld, s, key,
                   "plugin \"%s\" not found in PXL_PLUGIN_PATH or %s", entry,
                   PXL_PLUGINDIR);
        return NULL;
}

/* One schedule's member: a string, or an integer for every. */
static const char *schedule_string(struct loader *ld, const config_setting_t *m,
                                   const char *key)
{
        if (config_setting_type(m) == CONFIG_TYPE_STRING)
                return config_setting_get_string(m);
        conf_error(ld, m, key, "%s must be a string, not %s",
                   config_setting_name(m), type_name(config_setting_type(m)));
        return NULL;
}

/* queue.schedules: a list of groups, checked member by member. */
static void load_schedules(struct loader *ld, const config_setting_t *list)
{
        struct pxl_queue_conf *qc = &ld->conf->queue;
        int n = config_setting_length(list);

        qc->schedules = calloc((size_t)n + 1, sizeof(*qc->schedules));
        if (qc->schedules == NULL) {
                conf_error(ld, list, "queue.schedules", "out of memory");
                return;
        }
        for (int i = 0; i < n; i++) {
                const config_setting_t *e =
                        config_setting_get_elem(list, (unsigned)i);
                struct pxl_schedule_conf *sc = &qc->schedules[qc->nschedules];
                const char *name = NULL, *queue = NULL, *cron = NULL;
                const char *payload = NULL;
                long long every = 0;
                bool has_every = false;
                char key[64], err[160];

                snprintf(key, sizeof(key), "queue.schedules[%d]", i);
                if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
                        conf_error(ld, e, key,
                                   "expected a group { ... }, got "
                                   "%s",
                                   type_name(config_setting_type(e)));
                        continue;
                }
                for (int j = 0; j < config_setting_length(e); j++) {
                        const config_setting_t *m =
                                config_setting_get_elem(e, (unsigned)j);
                        const char *mn = config_setting_name(m);

                        if (strcmp(mn, "name") == 0)
                                name = schedule_string(ld, m, key);
                        else if (strcmp(mn, "queue") == 0)
                                queue = schedule_string(ld, m, key);
                        else if (strcmp(mn, "cron") == 0)
                                cron = schedule_string(ld, m, key);
                        else if (strcmp(mn, "payload") == 0)
                                payload = schedule_string(ld, m, key);
                        else if (strcmp(mn, "every") == 0 &&
                                 (config_setting_type(m) == CONFIG_TYPE_INT ||
                                  config_setting_type(m) ==
                                          CONFIG_TYPE_INT64)) {
                                every = config_setting_get_int64(m);
                                has_every = true;
                                if (every < 1 || every > 31536000)
                                        conf_error(ld, m, key,
                                                   "every: %lld is out of "
                                                   "range 1-31536000 seconds",
                                                   every);
                        } else if (strcmp(mn, "every") == 0)
                                conf_error(
                                        ld, m, key,
                                        "every must be an integer (seconds)");
                        else
                                conf_error(ld, m, key,
                                           "unknown key \"%s\" (expected "
                                           "name, queue, every, cron, "
                                           "payload)",
                                           mn);
                }
                if (name == NULL || name[0] == '\0' || queue == NULL ||
                    queue[0] == '\0') {
                        conf_error(ld, e, key, "needs a name and a queue");
                        continue;
                }
                /* The name goes into the ids of its ticks' jobs. */
                if (strlen(name) > 64 ||
                    strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                            strlen(name)) {
                        conf_error(ld, config_setting_get_member(e, "name"),
                                   key,
                                   "name \"%s\": 1 to 64 of A-Z a-z 0-9 "
                                   "_ . -",
                                   name);
                        continue;
                }
                if (has_every == (cron != NULL)) {
                        conf_error(ld, e, key,
                                   "give every (seconds) or cron, one of "
                                   "them");
                        continue;
                }
                if (cron != NULL) {
                        struct pxl_cron c;

                        if (pxl_cron_parse(cron, &c, err, sizeof(err)) < 0) {
                                conf_error(ld,
                                           config_setting_get_member(e, "cron"),
                                           key, "cron: %s", err);
                                continue;
                        }
                }
                if (payload != NULL) {
                        struct json_object *o = NULL;

                        if (pxl_json_build(payload, strlen(payload), 64, &o) <
                            0) {
                                conf_error(
                                        ld,
                                        config_setting_get_member(e, "payload"),
                                        key, "payload is not JSON");
                                continue;
                        }
                        json_object_put(o);
                }
                for (size_t k = 0; k < qc->nschedules; k++)
                        if (strcmp(qc->schedules[k].name, name) == 0)
                                conf_error(ld, e, key,
                                           "a second schedule named \"%s\"",
                                           name);
                sc->name = dup_or_oom(ld, name);
                sc->queue = dup_or_oom(ld, queue);
                sc->cron = cron ? dup_or_oom(ld, cron) : NULL;
                sc->payload = dup_or_oom(ld, payload ? payload : "null");
                sc->every = (unsigned)every;
                sc->line = config_setting_source_line(e);
                qc->nschedules++;
        }
}

static void load_plugins(struct loader *ld, const config_setting_t *list)
{
        struct pxl_config *conf = ld->conf;
        int n = config_setting_length(list);

        conf->plugins = calloc((size_t)n + 1, sizeof(*conf->plugins));
        if (conf->plugins == NULL) {
                conf_error(ld, list, "plugins", "out of memory");
                return;
        }
        for (int i = 0; i < n; i++) {
                const config_setting_t *e =
                        config_setting_get_elem(list, (unsigned)i);
                const config_setting_t *settings = NULL;
                const char *path = NULL;
                char key[64];

                snprintf(key, sizeof(key), "plugins[%d]", i);
                if (config_setting_type(e) == CONFIG_TYPE_STRING) {
                        path = config_setting_get_string(e);
                } else if (config_setting_type(e) == CONFIG_TYPE_GROUP) {
                        for (int j = 0; j < config_setting_length(e); j++) {
                                const config_setting_t *m =
                                        config_setting_get_elem(e, (unsigned)j);
                                const char *mn = config_setting_name(m);

                                if (strcmp(mn, "path") == 0 &&
                                    config_setting_type(m) ==
                                            CONFIG_TYPE_STRING)
                                        path = config_setting_get_string(m);
                                else if (strcmp(mn, "settings") == 0 &&
                                         config_setting_type(m) ==
                                                 CONFIG_TYPE_GROUP)
                                        settings = m;
                                else if (strcmp(mn, "path") == 0 ||
                                         strcmp(mn, "settings") == 0)
                                        conf_error(
                                                ld, m, key,
                                                "%s must be %s, not %s", mn,
                                                strcmp(mn, "path") == 0
                                                        ? "a string"
                                                        : "a group",
                                                type_name(config_setting_type(
                                                        m)));
                                else
                                        conf_error(ld, m, key,
                                                   "unknown key \"%s\" "
                                                   "(expected path, settings)",
                                                   mn);
                        }
                        if (path == NULL) {
                                conf_error(ld, e, key, "missing path");
                                continue;
                        }
                } else {
                        conf_error(ld, e, key,
                                   "expected a string or a group, got %s",
                                   type_name(config_setting_type(e)));
                        continue;
                }
                char *resolved = resolve_plugin(ld, e, key, path);
                if (resolved == NULL)
                        continue;
                conf->plugins[conf->nplugins].path = resolved;
                conf->plugins[conf->nplugins].entry = e;
                conf->plugins[conf->nplugins].index = i;
                conf->plugins[conf->nplugins].settings = settings;
                conf->plugins[conf->nplugins].line =
                        (int)config_setting_source_line(e);
                conf->plugins[conf->nplugins].file =
                        config_setting_source_file(e) != NULL
                                ? config_setting_source_file(e)
                                : conf->file;
                conf->nplugins++;
        }
}

static void load_value(struct loader *ld, const config_setting_t *s,
                       const struct conf_key *k, const char *key)
{
        int t = config_setting_type(s);
        char *field = ld->base + k->offset;

        switch (k->type) {
        case KEY_INT_AUTO:
                if (t == CONFIG_TYPE_STRING) {
                        if (strcmp(config_setting_get_string(s), "auto") != 0)
                                conf_error(
                                        ld, s, key,
                                        "\"%s\" must be an integer or \"auto\"",
                                        config_setting_get_string(s));
                        else
                                store_int(field, k->width, 0);
                        return;
                }
                /* fall through */
        case KEY_INT:
                if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
                        conf_error(ld, s, key, "expected an integer, got %s",
                                   type_name(t));
                        return;
                }
                set_int(ld, s, k, key, config_setting_get_int64(s));
                return;
        case KEY_BOOL:
                if (t != CONFIG_TYPE_BOOL) {
                        conf_error(ld, s, key,
                                   "expected a boolean (true or false), got %s",
                                   type_name(t));
                        return;
                }
                set_bool(ld, k, config_setting_get_bool(s) != 0);
                return;
        case KEY_STRING:
                if (t != CONFIG_TYPE_STRING) {
                        conf_error(ld, s, key, "expected a string, got %s",
                                   type_name(t));
                        return;
                }
                set_string(ld, s, k, key, config_setting_get_string(s));
                return;
        case KEY_STRINGS: {
                int n = config_setting_length(s);
                const char *why;
                char **v;

                if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY) {
                        conf_error(ld, s, key,
                                   "expected a list of strings, got %s",
                                   type_name(t));
                        return;
                }
                v = calloc((size_t)n + 1, sizeof(*v));
                if (v == NULL) {
                        conf_error(ld, s, key, "out of memory");
                        return;
                }
                free_strings(*(char ***)field);
                *(char ***)field = v;
                for (int i = 0; i < n; i++) {
                        const config_setting_t *e =
                                config_setting_get_elem(s, (unsigned)i);

                        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                                conf_error(
                                        ld, e, key,
                                        "element %d: expected a string, got %s",
                                        i, type_name(config_setting_type(e)));
                                continue;
                        }
                        v[i] = dup_or_oom(ld, config_setting_get_string(e));
                        if (v[i] == NULL)
                                return;
                        if (k->check != NULL &&
                            (why = k->check(ld->conf, v[i])) != NULL)
                                conf_error(ld, e, key, "element %d: \"%s\": %s",
                                           i, v[i], why);
                }
                return;
        }
        case KEY_LIST:
                if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY) {
                        conf_error(ld, s, key,
                                   "expected a list ( ... ), got %s",
                                   type_name(t));
                        return;
                }
                if (strcmp(k->name, "plugins") == 0)
                        load_plugins(ld, s);
                else
                        load_schedules(ld, s);
                return;
        case KEY_GROUP:
                break;
        }
}

static void load_group(struct loader *ld, const config_setting_t *group,
                       const char *prefix)
{
        int n = config_setting_length(group);

        for (int i = 0; i < n; i++) {
                const config_setting_t *s =
                        config_setting_get_elem(group, (unsigned)i);
                const struct conf_key *k;
                char key[256];

                if (prefix[0] != '\0')
                        snprintf(key, sizeof(key), "%s.%s", prefix,
                                 config_setting_name(s));
                else
                        snprintf(key, sizeof(key), "%s",
                                 config_setting_name(s));
                k = find_key(ld, key + ld->skip);
                if (k == NULL) {
                        conf_error(ld, s, key, "unknown key");
                        continue;
                }
                if (k->type == KEY_GROUP) {
                        if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
                                conf_error(ld, s, key,
                                           "expected a group { ... }, got %s",
                                           type_name(config_setting_type(s)));
                                continue;
                        }
                        load_group(ld, s, key);
                        continue;
                }
                load_value(ld, s, k, key);
        }
}

/* The key must suit the algorithm: a secret for HS*, a public key else. */
static void check_auth(struct loader *ld)
{
        struct pxl_config *conf = ld->conf;
        const config_setting_t *jwt = config_lookup(&conf->cfg, "auth.jwt");
        bool hmac = conf->auth.algorithm[0] == 'H';

        conf->auth.enabled = jwt != NULL;
        if (jwt == NULL)
                return;
        if (hmac && conf->auth.secret == NULL)
                conf_error(ld, jwt, "auth.jwt", "%s needs a secret",
                           conf->auth.algorithm);
        else if (!hmac && conf->auth.public_key == NULL)
                conf_error(ld, jwt, "auth.jwt", "%s needs a public_key",
                           conf->auth.algorithm);
        else if (hmac && conf->auth.public_key != NULL)
                conf_error(ld, jwt, "auth.jwt",
                           "public_key is for RS/ES algorithms, not %s",
                           conf->auth.algorithm);
        else if (!hmac && conf->auth.secret != NULL)
                conf_error(ld, jwt, "auth.jwt",
                           "secret is for HS algorithms, not %s",
                           conf->auth.algorithm);
}

/* Several workers only make one app through Redis. */
static void check_cluster(struct loader *ld)
{
        struct pxl_config *conf = ld->conf;
        const config_setting_t *redis = config_lookup(&conf->cfg, "redis");

        conf->redis.enabled = redis != NULL;
        if (conf->workers == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);

                conf->workers = n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
        }
        if (conf->workers > 1 && redis == NULL)
                conf_error(ld, config_lookup(&conf->cfg, "workers"), "workers",
                           "%u workers need a redis { ... } section to "
                           "coordinate through (or set workers = 1)",
                           conf->workers);
        if (redis == NULL)
                return;
        if (conf->redis.user != NULL && conf->redis.password == NULL)
                conf_error(ld, config_lookup(&conf->cfg, "redis.user"),
                           "redis.user", "needs redis.password");
        if (conf->redis.dead_after <= conf->redis.heartbeat_interval)
                conf_error(ld, config_lookup(&conf->cfg, "redis.dead_after"),
                           "redis.dead_after",
                           "%u must be more than redis.heartbeat_interval (%u)",
                           conf->redis.dead_after,
                           conf->redis.heartbeat_interval);
}

/* The endpoints' paths are apart from each other and from listen.path. */
static void check_endpoints(struct loader *ld)
{
        struct pxl_endpoints_conf *e = &ld->conf->endpoints;
        const char *ws = ld->conf->path;

        e->admin = config_lookup(&ld->conf->cfg, "admin") != NULL;
        if (e->health_path == NULL || e->metrics_path == NULL || ws == NULL)
                return;
        if (strcmp(e->health_path, e->metrics_path) == 0)
                conf_error(ld, config_lookup(&ld->conf->cfg, "metrics.path"),
                           "metrics.path", "\"%s\" is health.path too",
                           e->metrics_path);
        if (e->admin)
                return;
        if (strcmp(e->health_path, ws) == 0)
                conf_error(ld, config_lookup(&ld->conf->cfg, "health.path"),
                           "health.path", "\"%s\" is listen.path too", ws);
        if (strcmp(e->metrics_path, ws) == 0)
                conf_error(ld, config_lookup(&ld->conf->cfg, "metrics.path"),
                           "metrics.path", "\"%s\" is listen.path too", ws);
}

/* The database group: the keys of the other driver are mistakes. */
static void check_database(struct loader *ld)
{
        struct pxl_db_conf *db = &ld->conf->database;
        const config_setting_t *group =
                config_lookup(&ld->conf->cfg, "database");
        static const char *const pg_only[] = {
                "url",
                "password_env",
                "password_file",
                "pool_size",
                "connect_timeout",
                "statement_timeout",
                "retry_max_delay",
                "required",
        };
        static const char *const sqlite_only[] = {"path", "busy_timeout",
                                                  "readers"};
        const char *const *other = db->postgresql ? sqlite_only : pg_only;
        size_t nother = db->postgresql ? sizeof(sqlite_only) / sizeof(*other)
                                       : sizeof(pg_only) / sizeof(*other);

        db->enabled = group != NULL;
        if (group == NULL)
                return;
        for (size_t i = 0; i < nother; i++) {
                const config_setting_t *s =
                        config_setting_get_member(group, other[i]);
                char key[64];

                if (s == NULL)
                        continue;
                snprintf(key, sizeof(key), "database.%s", other[i]);
                conf_error(ld, s, key, "is for driver %s, not %s",
                           db->postgresql ? "sqlite" : "postgresql",
                           db->postgresql ? "postgresql" : "sqlite");
        }
        if (db->postgresql && db->url == NULL)
                conf_error(ld, group, "database.url",
                           "missing (driver postgresql needs a connection "
                           "string or URL)");
        if (db->password_env != NULL && db->password_file != NULL)
                conf_error(ld,
                           config_setting_get_member(group, "password_file"),
                           "database.password_file",
                           "give password_env or password_file, not both");
        if (!db->postgresql && db->path == NULL && ld->conf->name != NULL) {
                char buf[128];

                snprintf(buf, sizeof(buf), "%s.db", ld->conf->name);
                db->path = dup_or_oom(ld, buf);
        }
}

/*
 * queue.rate_limits: "QUEUE=N" each, N from 1 to 100000; a schedule's
 * payload within queue.max_payload (every tick would be refused).
 */
/* The static group needs a folder that can be opened. */
static void check_static(struct loader *ld)
{
        struct pxl_config *conf = ld->conf;
        const config_setting_t *g = config_lookup(&conf->cfg, "static");
        struct stat sb;

        if (g == NULL)
                return;
        if (conf->static_root == NULL) {
                conf_error(ld, g, "static", "needs root (the folder to "
                                            "serve)");
                return;
        }
        errno = 0;
        if (stat(conf->static_root, &sb) < 0 || !S_ISDIR(sb.st_mode))
                conf_error(ld, config_lookup(&conf->cfg, "static.root"),
                           "static.root", "%s is not a folder%s%s",
                           conf->static_root, errno ? ": " : "",
                           errno ? strerror(errno) : "");
}

/*
 * Group key, which lives in one process for now (Redis, for a cluster or
 * several machines, is to come): whether it is present; refused beside
 * a redis group, saying what lives where.
 */
static bool one_process_group(struct loader *ld, const char *key,
                              const char *what)
{
        const config_setting_t *g = config_lookup(&ld->conf->cfg, key);

        if (g != NULL && config_lookup(&ld->conf->cfg, "redis") != NULL)
                conf_error(ld, g, key,
                           "not available with redis yet: %s in one "
                           "process (no redis group, one worker)", what);
        return g != NULL;
}

static void check_history(struct loader *ld)
{
        ld->conf->rooms.history =
                one_process_group(ld, "rooms.history", "room history lives");
}

static void check_resume(struct loader *ld)
{
        ld->conf->resume.on = one_process_group(ld, "resume", "sessions live");
}

static void check_queue(struct loader *ld)
{
        const struct pxl_queue_conf *qc = &ld->conf->queue;

        for (size_t i = 0; i < qc->nschedules; i++) {
                const struct pxl_schedule_conf *sc = &qc->schedules[i];

                if (strlen(sc->payload) <= qc->max_payload)
                        continue;
                pxl_str_report(ld->errors, ld->name, sc->line,
                               "queue.schedules",
                               "%s: payload of %zu bytes is over "
                               "queue.max_payload (%u)",
                               sc->name, strlen(sc->payload), qc->max_payload);
                ld->nerrors++;
        }
        char **v = ld->conf->queue.rate_limits;
        const config_setting_t *s =
                config_lookup(&ld->conf->cfg, "queue.rate_limits");

        for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
                const char *eq = strchr(v[i], '=');
                char *end;
                long n = eq ? strtol(eq + 1, &end, 10) : 0;

                if (eq == NULL || eq == v[i] || end == eq + 1 || *end != '\0' ||
                    n < 1 || n > 100000)
                        conf_error(ld, config_setting_get_elem(s, (unsigned)i),
                                   "queue.rate_limits",
                                   "element %zu: \"%s\" is not QUEUE=N "
                                   "(N jobs a second, 1 to 100000)",
                                   i, v[i]);
        }
}

/* Files named in the app file are relative to it, like plugins. */
static void relative_to_app(struct loader *ld, char **path)
{
        char buf[PATH_MAX];

        if (*path == NULL)
                return;
        join_path(buf, sizeof(buf), ld->conf->dir, *path);
        free(*path);
        *path = dup_or_oom(ld, buf);
}

/* The file the key names can be read: a missing certificate is named
 * with its line at -t, not as an OpenSSL error code at start. One that
 * cannot is forgotten: there is nothing for the others to load. */
static void check_readable(struct loader *ld, const char *key, char **path)
{
        FILE *f;

        if (*path == NULL)
                return;
        if ((f = fopen(*path, "r")) == NULL) {
                conf_error(ld, config_lookup(&ld->conf->cfg, key), key,
                           "cannot read %s: %s", *path, strerror(errno));
                free(*path);
                *path = NULL;
                return;
        }
        fclose(f);
}

/*
 * log.file goes with destination = file and nothing else, and -t says
 * when it cannot be appended to: the file, or its folder when it does
 * not exist yet (it is created at start, not by -t).
 */
static void check_log(struct loader *ld)
{
        struct pxl_config *conf = ld->conf;
        const char *key = "log.file";
        char dir[PATH_MAX], *slash;

        relative_to_app(ld, &conf->log_file);
        if (conf->log_dest == PXL_LOG_TO_FILE && conf->log_file == NULL) {
                conf_error(ld, config_lookup(&conf->cfg, "log.destination"),
                           "log.destination", "file needs log.file");
                return;
        }
        if (conf->log_dest != PXL_LOG_TO_FILE && conf->log_file != NULL) {
                conf_error(ld, config_lookup(&conf->cfg, key), key,
                           "is only for log.destination = \"file\"");
                return;
        }
        if (conf->log_file == NULL)
                return;
        snprintf(dir, sizeof(dir), "%s", conf->log_file);
        slash = strrchr(dir, '/');
        if (slash != NULL)
                slash[slash == dir] = '\0';
        if (access(conf->log_file, F_OK) == 0
                    ? access(conf->log_file, W_OK) < 0
                    : access(slash != NULL ? dir : ".", W_OK | X_OK) < 0)
                conf_error(ld, config_lookup(&conf->cfg, key), key,
                           "cannot append to %s: %s", conf->log_file,
                           strerror(errno));
}

void pxl_conf_log_settings(const struct pxl_config *conf,
                           struct pxl_log_settings *s)
{
        *s = (struct pxl_log_settings){
                .level = conf->log_level,
                .format = conf->log_format,
                .dest = conf->log_dest,
                .file = conf->log_file,
                .syslog_socket = conf->log_syslog_socket,
                .facility = conf->log_facility,
                .tag = conf->name,
        };
}

/* Finds or makes the groups above key ("listen" of "listen.port");
 * NULL when one is not a group (the file's own error says so). */
static config_setting_t *override_parent(struct loader *ld, const char *key,
                                         const char **leaf)
{
        config_setting_t *g = config_root_setting(&ld->conf->cfg);
        const char *seg = key, *dot;
        char name[256];

        while ((dot = strchr(seg, '.')) != NULL) {
                config_setting_t *m;

                snprintf(name, sizeof(name), "%.*s", (int)(dot - seg), seg);
                m = config_setting_get_member(g, name);
                if (m == NULL)
                        m = config_setting_add(g, name, CONFIG_TYPE_GROUP);
                else if (config_setting_type(m) != CONFIG_TYPE_GROUP)
                        return NULL;
                if (m == NULL) {
                        conf_error(ld, NULL, key, "out of memory");
                        return NULL;
                }
                g = m;
                seg = dot + 1;
        }
        *leaf = seg;
        return g;
}

/* A value of the key's type from the text of -o KEY=VALUE. */
static config_setting_t *override_value(struct loader *ld,
                                        config_setting_t *parent,
                                        const char *leaf,
                                        const struct conf_key *k,
                                        const char *key, const char *value)
{
        config_setting_t *s = NULL;
        long long v;
        char *end;

        switch (k->type) {
        case KEY_INT_AUTO:
        case KEY_INT:
                if (k->type == KEY_INT_AUTO && strcmp(value, "auto") == 0) {
                        s = config_setting_add(parent, leaf,
                                               CONFIG_TYPE_STRING);
                        if (s != NULL)
                                config_setting_set_string(s, value);
                        break;
                }
                errno = 0;
                v = strtoll(value, &end, 10);
                if (value[0] == '\0' || *end != '\0' || errno != 0) {
                        conf_error(ld, NULL, key, "\"%s\" is not an integer%s",
                                   value,
                                   k->type == KEY_INT_AUTO ? " or \"auto\""
                                                           : "");
                        return NULL;
                }
                s = config_setting_add(parent, leaf, CONFIG_TYPE_INT64);
                if (s != NULL)
                        config_setting_set_int64(s, v);
                break;
        case KEY_BOOL:
                if (strcasecmp(value, "true") != 0 &&
                    strcasecmp(value, "false") != 0) {
                        conf_error(ld, NULL, key,
                                   "\"%s\" is not true or false", value);
                        return NULL;
                }
                s = config_setting_add(parent, leaf, CONFIG_TYPE_BOOL);
                if (s != NULL)
                        config_setting_set_bool(s,
                                                strcasecmp(value, "true") == 0);
                break;
        case KEY_STRING:
                s = config_setting_add(parent, leaf, CONFIG_TYPE_STRING);
                if (s != NULL)
                        config_setting_set_string(s, value);
                break;
        case KEY_STRINGS: /* comma-separated */
                s = config_setting_add(parent, leaf, CONFIG_TYPE_ARRAY);
                for (const char *e = value; s != NULL;) {
                        const char *comma = strchrnul(e, ',');
                        char *one = strndup(e, (size_t)(comma - e));

                        if (one == NULL ||
                            config_setting_set_string_elem(s, -1, one) ==
                                    NULL) {
                                free(one);
                                s = NULL;
                                break;
                        }
                        free(one);
                        if (*comma == '\0')
                                break;
                        e = comma + 1;
                }
                break;
        case KEY_GROUP:
        case KEY_LIST:
                return NULL; /* refused before */
        }
        if (s == NULL)
                conf_error(ld, NULL, key, "out of memory");
        return s;
}

/* A copy of the overrides, so that a reload applies them again. */
static void keep_overrides(struct loader *ld, const char *const *overrides)
{
        size_t n = 0;

        while (overrides != NULL && overrides[n] != NULL)
                n++;
        if (n == 0)
                return;
        ld->conf->overrides = calloc(n + 1, sizeof(*ld->conf->overrides));
        if (ld->conf->overrides == NULL) {
                conf_error(ld, NULL, NULL, "out of memory");
                return;
        }
        for (size_t i = 0; i < n; i++)
                if ((ld->conf->overrides[i] = dup_or_oom(ld, overrides[i])) ==
                    NULL)
                        return;
}

/*
 * The command line's KEY=VALUE settings, over the file's: a key is
 * replaced, or added with the groups above it. A value is then checked
 * like one the file gives; its messages say "command line".
 */
static void apply_overrides(struct loader *ld, const char *const *overrides)
{
        for (size_t i = 0; overrides != NULL && overrides[i] != NULL; i++) {
                const char *eq = strchr(overrides[i], '=');
                const struct conf_key *k;
                config_setting_t *parent, *s;
                const char *leaf;
                char key[256];

                ld->overriding = true;
                if (eq == NULL || eq == overrides[i] ||
                    (size_t)(eq - overrides[i]) >= sizeof(key)) {
                        conf_error(ld, NULL, "-o", "\"%s\" is not KEY=VALUE",
                                   overrides[i]);
                        continue;
                }
                snprintf(key, sizeof(key), "%.*s", (int)(eq - overrides[i]),
                         overrides[i]);
                if ((k = find_key(ld, key)) == NULL) {
                        conf_error(ld, NULL, key, "unknown key");
                        continue;
                }
                if (k->type == KEY_GROUP || k->type == KEY_LIST) {
                        conf_error(ld, NULL, key,
                                   "is a %s: set it in the app file",
                                   k->type == KEY_GROUP ? "group" : "list");
                        continue;
                }
                if ((parent = override_parent(ld, key, &leaf)) == NULL)
                        continue;
                if (config_setting_get_member(parent, leaf) != NULL)
                        config_setting_remove(parent, leaf);
                s = override_value(ld, parent, leaf, k, key, eq + 1);
                if (s != NULL)
                        config_setting_set_hook(s, &from_command_line);
        }
        ld->overriding = false;
}

static struct pxl_config *load(const char *file, const char *text,
                               const char *const *overrides,
                               struct pxl_str *errors)
{
        struct pxl_config *conf = calloc(1, sizeof(*conf));
        struct loader ld = {
                .conf = conf,
                .base = (char *)conf,
                .keys = conf_keys,
                .nkeys = sizeof(conf_keys) / sizeof(*conf_keys),
                .errors = errors,
                .name = file,
                .what = "",
        };
        int ok;

        if (conf == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return NULL;
        }
        config_init(&conf->cfg);
        /* A default the table's own checks refuse is a bug, reported so. */
        apply_defaults(&ld, "");
        if (ld.nerrors > 0) {
                pxl_conf_free(conf);
                return NULL;
        }
        if ((conf->file = strdup(file)) == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                pxl_conf_free(conf);
                return NULL;
        }
        {
                const char *slash = strrchr(file, '/');
                conf->dir =
                        slash ? strndup(file, (size_t)(slash - file == 0
                                                               ? 1
                                                               : slash - file))
                              : strdup(".");
                if (conf->dir == NULL) {
                        pxl_str_puts(errors, "out of memory\n");
                        pxl_conf_free(conf);
                        return NULL;
                }
        }
        if (text != NULL) {
                ok = config_read_string(&conf->cfg, text);
        } else {
                /* Paths in @include are relative to the app file, like plugins.
                 */
                config_set_include_dir(&conf->cfg, conf->dir);
                ok = config_read_file(&conf->cfg, file);
        }
        if (!ok) {
                int err = errno ? errno : ENOENT;
                const char *efile = config_error_file(&conf->cfg);

                if (config_error_type(&conf->cfg) == CONFIG_ERR_FILE_IO)
                        pxl_str_report(errors, file, 0, NULL, "cannot read: %s",
                                       strerror(err));
                else
                        pxl_str_report(errors, efile ? efile : file,
                                       config_error_line(&conf->cfg), NULL,
                                       "%s", config_error_text(&conf->cfg));
                pxl_conf_free(conf);
                return NULL;
        }
        apply_overrides(&ld, overrides);
        keep_overrides(&ld, overrides);
        load_group(&ld, config_root_setting(&conf->cfg), "");
        if (conf->name == NULL)
                conf_error(&ld, NULL, "name",
                           "missing (every app needs a name)");
        if ((conf->tls_cert == NULL) != (conf->tls_key == NULL))
                conf_error(&ld, config_lookup(&conf->cfg, "listen.tls"),
                           "listen.tls", "needs both certificate and key");
        relative_to_app(&ld, &conf->tls_cert);
        relative_to_app(&ld, &conf->tls_key);
        relative_to_app(&ld, &conf->static_root);
        check_static(&ld);
        check_readable(&ld, "listen.tls.certificate", &conf->tls_cert);
        check_readable(&ld, "listen.tls.key", &conf->tls_key);
        relative_to_app(&ld, &conf->auth.public_key);
        relative_to_app(&ld, &conf->redis.socket);
        check_database(&ld);
        check_queue(&ld);
        check_history(&ld);
        check_resume(&ld);
        relative_to_app(&ld, &conf->database.path);
        relative_to_app(&ld, &conf->database.password_file);
        relative_to_app(&ld, &conf->database.migrations);
        if (conf->queue.path == NULL && conf->name != NULL) {
                char buf[128];

                snprintf(buf, sizeof(buf), "%s-jobs.db", conf->name);
                conf->queue.path = dup_or_oom(&ld, buf);
        }
        relative_to_app(&ld, &conf->queue.path);
        check_auth(&ld);
        check_cluster(&ld);
        check_endpoints(&ld);
        if (conf->limits.max_frame_size > conf->limits.max_message_size)
                conf_error(&ld,
                           config_lookup(&conf->cfg, "limits.max_frame_size"),
                           "limits.max_frame_size",
                           "%llu is larger than limits.max_message_size (%llu)",
                           (unsigned long long)conf->limits.max_frame_size,
                           (unsigned long long)conf->limits.max_message_size);
        if (conf->limits.max_output_bytes < conf->limits.max_message_size)
                conf_warning(&ld, "limits.max_output_bytes",
                             "warning: %llu is below "
                             "limits.max_message_size (%llu): "
                             "a reply that big goes out only when nothing "
                             "else is queued for its client",
                             (unsigned long long)conf->limits.max_output_bytes,
                             (unsigned long long)conf->limits.max_message_size);
        if (conf->log_messages && conf->log_level != PXL_LOG_DEBUG)
                conf_warning(&ld, "log.messages",
                             "warning: messages are logged at level debug "
                             "only, and log.level is not debug");
        check_log(&ld);
        conf->nerrors = (unsigned)ld.nerrors;
        return conf;
}

struct pxl_config *pxl_conf_load(const char *file,
                                 const char *const *overrides,
                                 struct pxl_str *errors)
{
        return load(file, NULL, overrides, errors);
}

struct pxl_config *pxl_conf_load_string(const char *text, const char *name,
                                        const char *const *overrides,
                                        struct pxl_str *errors)
{
        return load(name, text, overrides, errors);
}

void pxl_conf_free(struct pxl_config *conf)
{
        if (conf == NULL)
                return;
        for (size_t i = 0; i < conf->nplugins; i++)
                free(conf->plugins[i].path);
        free(conf->plugins);
        free(conf->file);
        free(conf->dir);
        free(conf->name);
        free(conf->host);
        free(conf->path);
        free(conf->tls_cert);
        free(conf->tls_key);
        free(conf->static_root);
        free_strings(conf->origins);
        free(conf->endpoints.metrics_path);
        free_strings(conf->endpoints.metrics_allow);
        free(conf->endpoints.health_path);
        free_strings(conf->endpoints.health_allow);
        free(conf->endpoints.admin_host);
        free(conf->auth.secret);
        free(conf->resume.secret);
        free(conf->auth.public_key);
        free(conf->auth.algorithm);
        free(conf->auth.issuer);
        free(conf->auth.audience);
        free(conf->redis.host);
        free(conf->redis.socket);
        free(conf->redis.user);
        free(conf->redis.password);
        free(conf->database.driver);
        free(conf->database.path);
        free(conf->database.url);
        free(conf->database.password_env);
        free(conf->database.password_file);
        free(conf->database.migrations);
        free(conf->queue.path);
        free(conf->log_file);
        free(conf->log_syslog_socket);
        free_strings(conf->queue.rate_limits);
        for (size_t i = 0; i < conf->queue.nschedules; i++) {
                free(conf->queue.schedules[i].name);
                free(conf->queue.schedules[i].queue);
                free(conf->queue.schedules[i].cron);
                free(conf->queue.schedules[i].payload);
        }
        free(conf->queue.schedules);
        free_strings(conf->overrides);
        pxl_str_fini(&conf->warnings);
        config_destroy(&conf->cfg);
        pxl_conf_free(conf->retired);
        free(conf);
}

/* ---- reload ------------------------------------------------------------ */

/* The keys a reload changes while serving; the others need a restart. */
static bool reloadable(const char *key)
{
        /* Kept messages were sized at start. */
        if (strncmp(key, "rooms.history", 13) == 0)
                return false;
        static const char *const live[] = {
                "raw_text", "connected_frame", "shutdown_timeout",
                "shutdown_spread",
                "listen.origins", "limits", "auth", "rooms", "presence",
                "inactivity", "heartbeat", "metrics.log_interval", "log",
        };

        for (size_t i = 0; i < sizeof(live) / sizeof(*live); i++) {
                size_t n = strlen(live[i]);

                if (strncmp(key, live[i], n) == 0 &&
                    (key[n] == '\0' || key[n] == '.'))
                        return true;
        }
        return false;
}

static bool same_text(const char *a, const char *b)
{
        return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool same_strings(char *const *a, char *const *b)
{
        size_t i = 0;

        if (a == NULL || b == NULL)
                return a == b;
        for (; a[i] != NULL && b[i] != NULL; i++)
                if (strcmp(a[i], b[i]) != 0)
                        return false;
        return a[i] == b[i];
}

/* A string key's value as the file gives it, or its default. */
static const char *text_value(const struct pxl_config *c,
                              const struct conf_key *k)
{
        const char *v;

        if (config_lookup_string(&c->cfg, k->name, &v) == CONFIG_TRUE)
                return v;
        return k->def.s;
}

static bool same_plugins(const struct pxl_config *a,
                         const struct pxl_config *b)
{
        if (a->nplugins != b->nplugins)
                return false;
        for (size_t i = 0; i < a->nplugins; i++)
                if (strcmp(a->plugins[i].path, b->plugins[i].path) != 0)
                        return false;
        return true;
}

static bool same_schedules(const struct pxl_queue_conf *a,
                           const struct pxl_queue_conf *b)
{
        if (a->nschedules != b->nschedules)
                return false;
        for (size_t i = 0; i < a->nschedules; i++) {
                const struct pxl_schedule_conf *x = &a->schedules[i],
                                               *y = &b->schedules[i];

                if (!same_text(x->name, y->name) ||
                    !same_text(x->queue, y->queue) || x->every != y->every ||
                    !same_text(x->cron, y->cron) ||
                    !same_text(x->payload, y->payload))
                        return false;
        }
        return true;
}

static bool key_differs(const struct conf_key *k, const struct pxl_config *a,
                        const struct pxl_config *b)
{
        const char *fa = (const char *)a + k->offset,
                   *fb = (const char *)b + k->offset;

        switch (k->type) {
        case KEY_GROUP:
                return (config_lookup(&a->cfg, k->name) == NULL) !=
                       (config_lookup(&b->cfg, k->name) == NULL);
        case KEY_LIST:
                return strcmp(k->name, "plugins") == 0
                               ? !same_plugins(a, b)
                               : !same_schedules(&a->queue, &b->queue);
        case KEY_STRING:
                if (k->width == 0)
                        return !same_text(text_value(a, k), text_value(b, k));
                return !same_text(*(char *const *)fa, *(char *const *)fb);
        case KEY_STRINGS:
                return !same_strings(*(char **const *)fa,
                                     *(char **const *)fb);
        case KEY_INT:
        case KEY_INT_AUTO:
        case KEY_BOOL:
                break;
        }
        return k->width != 0 && memcmp(fa, fb, k->width) != 0;
}

/* Takes k's value from next; next gets the old one (and frees it). The
 * check of a string key sets what it derives from it (log.level). */
static void take_value(const struct conf_key *k, struct pxl_config *conf,
                       struct pxl_config *next)
{
        char *a = (char *)conf + k->offset, *b = (char *)next + k->offset;
        char tmp[sizeof(uint64_t)];

        if (k->width != 0) {
                memcpy(tmp, a, k->width);
                memcpy(a, b, k->width);
                memcpy(b, tmp, k->width);
        }
        if (k->type == KEY_STRING && k->check != NULL) {
                const char *v = k->width != 0 ? *(char **)a
                                              : text_value(next, k);

                if (v != NULL)
                        (void)k->check(conf, v);
        }
}

void pxl_conf_reload(struct pxl_config *conf, struct pxl_config *next,
                     struct pxl_str *restart)
{
        /* Port 0 is any free port, and the one a cluster took is one. */
        if (next->port == 0)
                next->port = conf->port;
        for (size_t i = 0; i < sizeof(conf_keys) / sizeof(*conf_keys); i++) {
                const struct conf_key *k = &conf_keys[i];

                if (!reloadable(k->name)) {
                        if (key_differs(k, conf, next))
                                pxl_str_report(restart, k->name, 0, NULL,
                                               "needs a restart");
                        continue;
                }
                take_value(k, conf, next);
        }
        /* Derived from the group's presence, not from a key. */
        conf->auth.enabled = next->auth.enabled;
        next->retired = conf->retired;
        conf->retired = next;
}

/* A plugin's table as rows of ours; its own problems are reported. */
static void settings_keys(struct loader *ld, const struct pxl_setting *table,
                          struct conf_key *keys)
{
        for (size_t i = 0; i < ld->nkeys && table[i].name != NULL; i++) {
                const struct pxl_setting *t = &table[i];
                struct conf_key *k = &keys[i];
                char key[256];

                snprintf(key, sizeof(key), "settings.%s", t->name);
                k->name = t->name;
                k->required = t->required;
                k->min = t->min;
                k->max = t->max;
                k->offset = i * sizeof(union pxl_conf_value);
                k->help = t->help;
                switch (t->type) {
                case PXL_SETTING_INT:
                        k->type = KEY_INT;
                        k->width = sizeof(int64_t);
                        k->def.i = t->def.i;
                        if (t->min == 0 && t->max == 0) {
                                k->min = LLONG_MIN;
                                k->max = LLONG_MAX;
                        }
                        break;
                case PXL_SETTING_BOOL:
                        k->type = KEY_BOOL;
                        k->width = sizeof(bool);
                        k->def.b = t->def.b;
                        break;
                case PXL_SETTING_STRING:
                        k->type = KEY_STRING;
                        k->width = sizeof(char *);
                        k->def.s = t->def.s;
                        if (t->min == 0 && t->max == 0)
                                k->max = LLONG_MAX;
                        break;
                default:
                        conf_error(ld, NULL, key, "unknown type %d",
                                   (int)t->type);
                        continue;
                }
                if (t->name[0] == '\0') {
                        snprintf(key, sizeof(key), "settings[%zu]", i);
                        conf_error(ld, NULL, key, "has no name");
                        k->width = 0;
                }
                for (size_t j = 0; j < i; j++)
                        if (strcmp(table[j].name, t->name) == 0) {
                                conf_error(ld, NULL, key, "declared twice");
                                k->width = 0;
                                break;
                        }
                if (k->min > k->max) {
                        conf_error(ld, NULL, key, "range %lld..%lld is empty",
                                   k->min, k->max);
                        k->width = 0;
                } else if (k->type == KEY_STRING && k->min < 0) {
                        conf_error(ld, NULL, key,
                                   "range %lld..%lld: a length is never "
                                   "below 0",
                                   k->min, k->max);
                        k->width = 0;
                }
        }
}

int pxl_conf_settings(const struct pxl_config *conf,
                      const struct pxl_plugin_conf *pc, const char *path,
                      const struct pxl_setting *table,
                      union pxl_conf_value **values, struct pxl_str *errors)
{
        struct loader ld = {.errors = errors, .name = path, .what = ""};
        struct conf_key *keys;
        union pxl_conf_value *v;
        char prefix[64];
        size_t n = 0;

        *values = NULL;
        while (table[n].name != NULL)
                n++;
        keys = calloc(n + 1, sizeof(*keys));
        v = calloc(n + 1, sizeof(*v));
        if (keys == NULL || v == NULL) {
                free(keys);
                free(v);
                pxl_str_report(errors, path, 0, NULL, "out of memory");
                return PXL_ENOMEM;
        }
        ld.base = (char *)v;
        ld.keys = keys;
        ld.nkeys = n;
        /* The table first: a bad row or default is the plugin's fault. */
        settings_keys(&ld, table, keys);
        apply_defaults(&ld, "settings");
        /* Then the app file's group, as the app file's keys are checked. */
        if (ld.nerrors == 0) {
                snprintf(prefix, sizeof(prefix), "plugins[%d].settings",
                         pc->index);
                ld.name = conf->file;
                ld.skip = strlen(prefix) + 1;
                if (pc->settings != NULL)
                        load_group(&ld, pc->settings, prefix);
                for (size_t i = 0; i < n; i++) {
                        char key[256];

                        if (!keys[i].required ||
                            (pc->settings != NULL &&
                             config_setting_get_member(pc->settings,
                                                       keys[i].name) != NULL))
                                continue;
                        snprintf(key, sizeof(key), "%s.%s", prefix,
                                 keys[i].name);
                        conf_error(&ld,
                                   pc->settings != NULL ? pc->settings
                                                        : pc->entry,
                                   key, "missing");
                }
        }
        free(keys);
        if (ld.nerrors > 0) {
                pxl_conf_settings_free(table, v);
                return PXL_ERR;
        }
        *values = v;
        return PXL_OK;
}

void pxl_conf_settings_free(const struct pxl_setting *table,
                            union pxl_conf_value *values)
{
        if (values == NULL)
                return;
        for (size_t i = 0; table[i].name != NULL; i++)
                if (table[i].type == PXL_SETTING_STRING)
                        free(values[i].s);
        free(values);
}

/* The default as -T and pxl.cfg(5) write it: 8080, true, "/ws", any, -. */
static const char *default_text(const struct conf_key *k, char *buf, size_t cap)
{
        switch (k->type) {
        case KEY_INT:
        case KEY_INT_AUTO:
                snprintf(buf, cap, "%lld", k->def.i);
                return buf;
        case KEY_BOOL:
                return k->def.b ? "true" : "false";
        case KEY_STRING:
                if (k->def.s == NULL)
                        break;
                snprintf(buf, cap, "\"%s\"", k->def.s);
                return buf;
        case KEY_STRINGS:
        case KEY_GROUP:
        case KEY_LIST:
                break;
        }
        return k->unset != NULL ? k->unset : "-";
}

/* The values an integer key accepts, as -T and pxl.cfg(5) write them:
 * 0..65535; "-" for other types (a string's length limit is in its
 * help where it matters). */
static const char *range_text(const struct conf_key *k, char *buf, size_t cap)
{
        if (k->type != KEY_INT && k->type != KEY_INT_AUTO)
                return "-";
        snprintf(buf, cap, "%lld..%lld", k->min, k->max);
        return buf;
}

/* KEY TYPE DEFAULT RANGE MEANING, in pxl.cfg(5)'s order (test_docs). */
void pxl_conf_print_keys(void)
{
        for (size_t i = 0; i < sizeof(conf_keys) / sizeof(*conf_keys); i++) {
                const struct conf_key *k = &conf_keys[i];
                char def[64], range[64];

                printf("%-30s %-8s %-10s %-13s %s\n", k->name,
                       key_type_names[k->type],
                       default_text(k, def, sizeof(def)),
                       range_text(k, range, sizeof(range)), k->help);
        }
}
