/*
 * pxl_metrics.h - one worker's counters, declared once in a table that
 * the JSON snapshot, the periodic log line and the docs are made from.
 * Incrementing is a plain add: each worker is one thread.
 */
#ifndef PXL_METRICS_H
#define PXL_METRICS_H

#include <stdint.h>

struct pxl_worker;
struct json_object;

/*
 * name, Prometheus name (pxl_NAME_total on /metrics), JSON key, meaning;
 * RATE ones also get a per-second figure.
 */
#define PXL_COUNTERS(X)                                                        \
        X(connects, "connections_opened", "connects",                          \
          "clients that completed the upgrade", RATE)                          \
        X(disconnects, "connections_closed", "disconnects",                    \
          "clients that went away", RATE)                                      \
        X(messages_in, "messages_received", "messagesIn",                      \
          "data messages received", RATE)                                      \
        X(messages_out, "messages_sent", "messagesOut",                        \
          "messages queued to clients", RATE)                                  \
        X(bytes_in, "received_bytes", "bytesIn", "bytes read from clients",    \
          RATE)                                                                \
        X(bytes_out, "sent_bytes", "bytesOut", "bytes queued to clients",      \
          RATE)                                                                \
        X(frames_encoded, "frames_encoded", "framesEncoded",                   \
          "outgoing frames built (one per broadcast)", RATE)                   \
        X(auth_failures, "auth_failures", "authFailures",                      \
          "upgrades refused with 401", NORATE)                                 \
        X(refused_upgrades, "upgrades_refused", "refusedUpgrades",             \
          "upgrades refused (400/403/404/426/503)", NORATE)                    \
        X(err_parse, "errors_parse", "errorsParse", "Failed to parse JSON",    \
          NORATE)                                                              \
        X(err_envelope, "errors_envelope", "errorsEnvelope",                   \
          "Invalid message / missing type or action", NORATE)                  \
        X(err_route, "errors_unknown_route", "errorsUnknownRoute",             \
          "Unknown route", NORATE)                                             \
        X(err_handler, "errors_handler", "errorsHandler", "handler failures",  \
          NORATE)                                                              \
        X(err_protocol, "closed_protocol_error", "errorsProtocol",             \
          "closes with 1002", NORATE)                                          \
        X(err_utf8, "closed_invalid_utf8", "errorsUtf8", "closes with 1007",   \
          NORATE)                                                              \
        X(err_too_big, "closed_too_big", "errorsTooBig", "closes with 1009",   \
          NORATE)                                                              \
        X(err_slow, "closed_slow_consumer", "errorsSlowConsumer",              \
          "closes with 4009", NORATE)                                          \
        X(closed_inactive, "closed_inactive", "closedInactive",                \
          "closes with 4000", NORATE)                                          \
        X(closed_heartbeat, "closed_heartbeat", "closedHeartbeat",             \
          "closes with 4001", NORATE)                                          \
        X(closed_rate_limited, "closed_rate_limited", "closedRateLimited",     \
          "closes with 4008", NORATE)                                          \
        X(rate_limited, "messages_rate_limited", "rateLimited",                \
          "messages refused over limits.rate", NORATE)                         \
        X(refused_per_ip, "upgrades_refused_per_ip", "refusedPerIp",           \
          "upgrades refused over limits.max_connections_per_ip", NORATE)       \
        X(handshake_timeouts, "handshake_timeouts", "handshakeTimeouts",       \
          "connections closed at limits.handshake_timeout", NORATE)            \
        X(handshakes_dropped, "handshakes_dropped", "handshakesDropped",       \
          "upgrading connections dropped at limits.max_handshakes", NORATE)    \
        X(accept_errors, "accept_errors", "acceptErrors",                      \
          "accept(2) failures (out of descriptors)", NORATE)                   \
        X(metadata_refused, "metadata_refused", "metadataRefused",             \
          "metadata sets refused over limits.max_metadata_*", NORATE)          \
        X(deferred_dropped, "deferred_replies_dropped", "deferredDropped",     \
          "deferred replies to clients that had gone", NORATE)                 \
        X(bus_events, "bus_events", "busEvents",                               \
          "events published on the bus", RATE)                                 \
        X(subscriber_failures, "subscriber_failures", "subscriberFailures",    \
          "subscribers that returned an error", NORATE)                        \
        X(redis_published, "redis_published", "redisPublished",                \
          "messages published to other workers", RATE)                         \
        X(redis_received, "redis_received", "redisReceived",                   \
          "messages received from other workers", RATE)                        \
        X(redis_dropped, "redis_dropped", "redisDropped",                      \
          "messages for other workers lost: Redis down or failing", NORATE)    \
        X(redis_reconnects, "redis_reconnects", "redisReconnects",             \
          "connections to Redis made again after a loss", NORATE)

struct pxl_metrics {
#define PXL_COUNTER_FIELD(name, prom, key, help, rate) uint64_t name;
        PXL_COUNTERS(PXL_COUNTER_FIELD)
#undef PXL_COUNTER_FIELD
        /* per-second figures of the RATE counters, over the last second */
        struct {
#define PXL_COUNTER_FIELD(name, prom, key, help, rate) double name;
                PXL_COUNTERS(PXL_COUNTER_FIELD)
#undef PXL_COUNTER_FIELD
        } per_sec;
        struct {
#define PXL_COUNTER_FIELD(name, prom, key, help, rate) uint64_t name;
                PXL_COUNTERS(PXL_COUNTER_FIELD)
#undef PXL_COUNTER_FIELD
        } last; /* counters at the previous tick */
        uint64_t ticks;
};

/* Once a second: rates, and the log line every metrics.log_interval. */
void pxl_metrics_tick(struct pxl_worker *srv);
struct json_object *pxl_metrics_json(const struct pxl_worker *srv);

#endif
