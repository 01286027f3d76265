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

#endif
