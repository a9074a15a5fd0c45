// The interface version the library was built with (trtc_launch.h).
#include "trtc_launch.h"

extern "C" int trtc_abi_version(void) { return TRTC_ABI_VERSION; }
