// What every benchmark binary's main() shares: a stop flag set by SIGINT/SIGTERM (children are
// stopped by their owners as the stack unwinds) and the one place FatalError is printed.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

namespace netwatch::bench {

extern std::atomic<bool> g_stop;

// Installs the SIGINT/SIGTERM handlers that set g_stop.
void install_stop_signals();
// Runs body; prints "<name>: <what>" for an exception and returns its exit code.
int guarded_main(const char* name, const std::function<int()>& body);
// Sleeps for d; throws FatalError("interrupted", 130) once g_stop is set.
void sleep_unless_stopped(std::chrono::milliseconds d);
// "2 CPUs, Intel(R) Xeon(R) Processor, kernel 6.18...": the header line of every report.
std::string machine_line();

}  // namespace netwatch::bench
