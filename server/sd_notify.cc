// sd_notify(3) messages from berthd to systemd through libsystemd.
#include "server/sd_notify.h"

#include <string.h>
#include <systemd/sd-daemon.h>

#include "glog/logging.h"

namespace berth {
namespace {

void Notify(const char* state) {
  // unset_environment=0: NOTIFY_SOCKET must survive READY=1 so STOPPING=1 can follow it.
  int r = sd_notify(0, state);
  if (r < 0) {
    LOG(WARNING) << "sd_notify(\"" << state << "\") to $NOTIFY_SOCKET failed: " << strerror(-r);
  } else if (r > 0) {
    VLOG(1) << "sd_notify: " << state;
  }
}

}  // namespace

void NotifyReady() { Notify("READY=1\nSTATUS=serving CRI"); }

void NotifyStopping() { Notify("STOPPING=1\nSTATUS=shutting down"); }

}  // namespace berth
