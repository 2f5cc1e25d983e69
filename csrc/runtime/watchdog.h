// A bound on run_engine's waits: a backend or device that never returns from a graph run (a hung
// driver, a deadlocked thread pool) ends the program with one line and exit code 6 instead of
// leaving it waiting forever. Each graph run (and the engine loading) is a "stage"; the watchdog
// thread ends the process when one stage lasts longer than the limit (--step-timeout).
#pragma once

namespace nbp::rt {

// Starts the watchdog thread (once); limit_s <= 0 leaves it off.
void watchdog_start(double limit_s);

// The program enters `stage` (a static string: "step", "prefill", "loading the engines", ...); the
// clock restarts. Cheap: two atomic stores.
void watchdog_enter(const char* stage);

// Stops the thread (at the end of main); idempotent.
void watchdog_stop();

// For the tests of the watchdog itself: where the environment variable NBP_RUN_ENGINE_STALL names a
// stage, entering it sleeps forever, as a hung backend would.

}  // namespace nbp::rt
