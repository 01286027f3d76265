/*
 * pxl_history.h - room history (rooms.history): the last messages of
 * each room, kept in this process, and the "pos" every room frame then
 * carries. Installed by pxl-serve like the other subsystems.
 */
#ifndef PXL_HISTORY_H
#define PXL_HISTORY_H

#include "pxl_worker.h"

/* With rooms.history: keep history in srv (PXL_ENOMEM, else PXL_OK). */
int pxl_history_install(struct pxl_worker *srv);

struct pxl_client;

/*
 * Resuming: queue for c the frames of room kept after position since
 * ("EPOCH:OFFSET"), oldest first, the very frames members got. 1 when
 * the history reaches back to since (nothing missed is lost), else 0 and
 * nothing is sent (another epoch, a malformed or unknown position, too
 * old); PXL_EINVAL when history is off.
 */
int pxl_history_replay(struct pxl_worker *srv, const char *room,
                       const char *since, struct pxl_client *c);

#endif
