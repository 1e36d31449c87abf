// berth-pause: the infra process of every pod. Holds the pod's namespaces, reaps zombies when it is
// PID 1 of a shared PID namespace, and exits cleanly on SIGTERM or SIGINT.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {

void Terminate(int sig) { _exit(0); }

void Reap(int) {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
    printf("berth-pause 1\n");
    return 0;
  }
  struct sigaction term {};
  term.sa_handler = Terminate;
  sigaction(SIGTERM, &term, nullptr);
  sigaction(SIGINT, &term, nullptr);
  struct sigaction chld {};
  chld.sa_handler = Reap;
  chld.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &chld, nullptr);
  for (;;) pause();
}
