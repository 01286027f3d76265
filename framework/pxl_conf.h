/*
 * pxl_conf.h - the app file: libconfig parses it, a key table validates
 * it. Every problem names file, line and key. Nothing here binds,
 * loads or starts anything, so `pxl-serve -t` and a reload share it.
 */
#ifndef PXL_CONF_H
#define PXL_CONF_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pxl_redis.h"
#include "pxl_str.h"

struct pxl_setting;

struct pxl_limits {
        uint64_t max_message_size;
        uint64_t max_frame_size;
        unsigned max_json_depth;
        unsigned handshake_timeout; /* seconds */
        unsigned max_header_size;
        unsigned max_connections;
        uint64_t max_output_bytes;
        unsigned max_handshakes;         /* upgrading connections per worker */
        unsigned max_connections_per_ip; /* 0 = no limit */
        unsigned rate;                   /* messages/s per client, 0 = off */
        unsigned burst;
        unsigned max_metadata_size;       /* bytes per client */
        unsigned max_metadata_entry_size; /* bytes per key */
};

/* auth.jwt: how upgrade requests are authenticated (pxl_auth.c). */
struct pxl_auth_conf {
        bool enabled;          /* the auth.jwt group is present */
        char *secret;          /* HMAC secret as written */
        bool secret_base64url; /* secret_encoding = "base64url" */
        char *public_key;      /* PEM file for RS/ES algorithms (resolved) */
        char *algorithm;       /* "HS256" unless set */
        bool required;         /* no token -> 401 */
        char *issuer;          /* checked when set */
        char *audience;        /* checked when set */
        unsigned leeway;       /* seconds of clock skew for exp/nbf */
};

struct pxl_rooms_conf {
        bool multiple; /* a client may be in several rooms */
        unsigned max_name_length;
        unsigned max_per_client;
        bool notify_members;         /* clientJoined / clientLeft to members */
        bool members_visible_to_all; /* roomMembers for non-members too */
        unsigned max_member_field_length; /* joinRoom userId, userType, username
                                           */
        bool history;          /* the rooms.history group is present */
        unsigned history_size; /* messages kept per room */
        unsigned history_ttl;  /* seconds a message is kept */
};

/* database: the app's database (pxl_db*.c), when the group is present. */
struct pxl_db_conf {
        bool enabled;    /* the database group is present */
        bool postgresql; /* driver = "postgresql"; else SQLite */
        char *driver;
        char *path;                 /* SQLite file (resolved) */
        char *url;                  /* PostgreSQL connection string or URL */
        char *password_env;         /* environment variable with the password */
        char *password_file;        /* file with the password (resolved) */
        unsigned pool_size;         /* PostgreSQL connections per worker */
        unsigned connect_timeout;   /* seconds */
        unsigned statement_timeout; /* milliseconds, 0 = none */
        unsigned retry_max_delay;   /* seconds: cap of the reconnect backoff */
        bool required;              /* refuse to start while unreachable */
        unsigned busy_timeout; /* SQLite: milliseconds to wait for a lock */
        unsigned readers;      /* SQLite: reader threads per worker */
        unsigned max_pending;  /* queries queued per worker */
        char *migrations;      /* folder of NNN_name.sql (resolved) */
};

/* One of queue.schedules: a job added to queue every N s or by cron. */
struct pxl_schedule_conf {
        char *name;
        char *queue;
        unsigned every; /* seconds; 0 with cron */
        char *cron;     /* a cron expression (UTC), or NULL with every */
        char *payload;  /* the jobs' payload as JSON text ("null") */
        int line;
};

/* queue: background jobs (pxl_queue.c), run when a plugin processes one. */
struct pxl_queue_conf {
        char *path;              /* SQLite file without an SQLite database */
        unsigned stalled_after;  /* seconds: a dead worker's jobs run again */
        unsigned timeout;        /* milliseconds a job may run */
        unsigned max_payload;    /* bytes of a job's JSON payload */
        unsigned keep_completed; /* completed jobs kept per queue */
        unsigned poll_interval;  /* milliseconds between looks for jobs */
        char **rate_limits;      /* "QUEUE=N": N jobs started per second */
        unsigned threads;        /* for blocking processors, per worker */
        struct pxl_schedule_conf *schedules;
        size_t nschedules;
};

struct pxl_plugin_conf {
        char *path;                       /* resolved path of the .so */
        const config_setting_t *entry;    /* its entry in the plugins list */
        int index;                        /* N of plugins[N] */
        const config_setting_t *settings; /* the plugin's group, or NULL */
        const char *file;                 /* where the entry is (borrowed) */
        int line;
};

struct pxl_config {
        char *file;
        char *dir; /* directory of the app file, for relative plugin paths */
        char *name;
        char *host;
        unsigned port;
        char *path;
        unsigned backlog;
        char *tls_cert; /* PEM files; both NULL for plain ws:// */
        char *tls_key;
        char *static_root;             /* folder served over HTTP, or NULL */
        uint64_t static_max_file_size; /* bytes */
        bool raw_text;
        bool connected_frame; /* send system/connected (and authenticated) */
        unsigned shutdown_timeout; /* seconds */
        unsigned shutdown_spread;  /* seconds over which 1001s go out */
        unsigned workers; /* worker processes; 0 = "auto" (online CPUs) */
        struct pxl_redis_conf redis;
        struct pxl_db_conf database;
        struct pxl_queue_conf queue;
        struct pxl_limits limits;
        /* /health and /metrics (pxl_endpoints.c) */
        struct pxl_endpoints_conf {
                char *metrics_path;
                char **metrics_allow; /* NULL: loopback only */
                char *health_path;
                char **health_allow; /* NULL: any address */
                bool admin;          /* the admin group: its own listener */
                char *admin_host;
                unsigned admin_port;
        } endpoints;
        char **origins; /* listen.origins; NULL = any Origin */
        struct pxl_auth_conf auth;
        struct pxl_rooms_conf rooms;
        struct {
                bool on;      /* the resume group is present */
                unsigned ttl; /* seconds a session is kept */
                char *secret; /* NULL: random per start */
        } resume;
        bool presence_client_list;
        bool presence_include_payload;
        unsigned presence_interval;  /* ms between clientList frames */
        unsigned max_idle;           /* inactivity.max_idle, 0 = off */
        unsigned check_interval;     /* inactivity.check_interval */
        unsigned heartbeat_interval; /* 0 = off */
        unsigned heartbeat_timeout;
        unsigned metrics_log_interval; /* 0 = never logged */
        int log_level;
        int log_format;
        bool log_messages; /* debug: a line per message (log.messages) */
        int log_dest;      /* enum pxl_log_dest (log.destination) */
        char *log_file;    /* log.file, resolved; NULL when unset */
        char *log_syslog_socket; /* log.syslog_socket */
        int log_facility;        /* log.syslog_facility as a code */
        bool log_access;         /* info: a line per client that leaves */
        struct pxl_plugin_conf *plugins;
        size_t nplugins;
        unsigned nerrors;
        struct pxl_str warnings; /* "file:line: key: warning: text\n" lines */
        config_t cfg;            /* kept: plugin settings point into it */
        char **overrides;        /* the command line's KEY=VALUE, for reloads */
        /* Configs a reload took values from: what was read from them
         * (plugin settings groups, threads' copies) stays valid until this
         * one is freed. */
        struct pxl_config *retired;
};

/*
 * Read and validate an app file. Returns NULL when the file cannot be
 * read or parsed; otherwise the config, with every problem appended to
 * errors as "file:line: key: text\n" lines and counted in nerrors (a
 * config with errors is only good for reporting, e.g. checking plugins).
 */
/*
 * overrides: NULL, or "KEY=VALUE" texts ended by NULL (pxl-serve -o),
 * applied over the file's settings and checked like them; their
 * problems name "command line" instead of a file and line.
 */
struct pxl_config *pxl_conf_load(const char *file,
                                 const char *const *overrides,
                                 struct pxl_str *errors);
/* The same from text; `name` stands for the file name in messages. */
struct pxl_config *pxl_conf_load_string(const char *text, const char *name,
                                        const char *const *overrides,
                                        struct pxl_str *errors);
void pxl_conf_free(struct pxl_config *conf);

/*
 * A reload (SIGHUP): take into conf, from next (a config of the same
 * file that loaded without errors), the values that can change while
 * serving (logging, limits, auth, rooms but rooms.history, presence,
 * inactivity, heartbeat, metrics.log_interval, origins, the greeting
 * and raw_text, the shutdown timeout and spread). Every other key that
 * differs is named in restart, one "KEY: needs a restart\n" line
 * each, and keeps its running value. next then belongs to
 * conf (freed with it).
 */
void pxl_conf_reload(struct pxl_config *conf, struct pxl_config *next,
                     struct pxl_str *restart);
struct pxl_log_settings;
/* The logger's settings of conf (for pxl_log_configure; borrows conf). */
void pxl_conf_log_settings(const struct pxl_config *conf,
                           struct pxl_log_settings *s);

/* Print the key table (name, type, default, help) for -T and the docs. */
void pxl_conf_print_keys(void);

/* A plugin setting's value, one per row of its table. */
union pxl_conf_value {
        int64_t i;
        bool b;
        char *s; /* owned; NULL when unset without a default */
};

/*
 * Check a plugin's table (problems are the plugin's: "PATH: settings.KEY:
 * text\n") and its settings group in conf against it, with the checks
 * and messages of the app file's keys ("FILE:LINE:
 * plugins[N].settings.KEY: text\n"). Returns 0 with *values set to one
 * value per row (defaults where the file sets nothing; free with
 * pxl_conf_settings_free), or PXL_ERR (problems appended to errors) or
 * PXL_ENOMEM with *values NULL.
 */
int pxl_conf_settings(const struct pxl_config *conf,
                      const struct pxl_plugin_conf *pc, const char *path,
                      const struct pxl_setting *table,
                      union pxl_conf_value **values, struct pxl_str *errors);
void pxl_conf_settings_free(const struct pxl_setting *table,
                            union pxl_conf_value *values);

#endif
