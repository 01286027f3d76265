/* placeholder */
#include "pxl_db.h"
