// Tells systemd (Type=notify units) when berthd is ready to serve and when it begins to stop.
#ifndef BERTH_SERVER_SD_NOTIFY_H_
#define BERTH_SERVER_SD_NOTIFY_H_

namespace berth {

// Sends READY=1 once the CRI socket accepts connections, so `systemctl start berthd` (and
// kubelet ordered After=berthd.service) waits for a runtime that answers. A no-op when
// NOTIFY_SOCKET is unset (not started by systemd); a failure to send is logged, never fatal.
void NotifyReady();

// Sends STOPPING=1 when shutdown begins, so systemd reports "deactivating" rather than a hang.
void NotifyStopping();

}  // namespace berth

#endif  // BERTH_SERVER_SD_NOTIFY_H_
