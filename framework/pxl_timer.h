/*
 * pxl_timer.h - plugins' timers (pxl_timer_after, _every, _cancel in
 * pxl/pxl.h): what the loader needs to free a plugin's timers with it.
 */
#ifndef PXL_TIMER_H
#define PXL_TIMER_H

struct pxl_plugin_slot;

/*
 * Free every timer the plugin of s has armed, without running them, and
 * refuse new ones from now on. Called once its fini has returned.
 */
void pxl_timers_close(struct pxl_plugin_slot *s);

#endif
