#include "common/fault.hpp"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>

namespace osu {
namespace {

struct FaultState {
  std::mutex mu;
  std::string armed;  // in-process step
  long armed_count = 0;  // or: the n-th step passed from now on
  bool recording = false;
  std::vector<std::string> seen;
  std::map<std::string, int> counts;  // a step passed twice is "name#2" the second time
};

FaultState& State() {
  static FaultState s;
  return s;
}

}  // namespace

void FaultPoint(const std::string& name) {
  FaultState& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  const int n = ++s.counts[name];
  const std::string step = n == 1 ? name : name + "#" + std::to_string(n);
#ifdef OSU_FAULT_ENV
  // Only in builds for testing (cmake -DOSU_FAULT_ENV=ON): a released binary reads no
  // environment variable that can make it stop half-way.
  static const char* env = std::getenv("OSU_FAULT");
  if (env && *env) {
    if (std::string(env) == "list") {
      std::cerr << "osu-fault: " << step << std::endl;
    } else if (step == env) {
      std::cerr << "osu-fault: stopping dead at " << step << std::endl;
      ::_exit(99);
    }
  }
#endif
  if (s.recording) s.seen.push_back(step);
  if ((!s.armed.empty() && s.armed == step) || (s.armed_count > 0 && --s.armed_count == 0)) {
    s.armed.clear();
    s.armed_count = 0;
    throw FaultInjected{step};
  }
}

namespace fault {

void ArmForTest(const std::string& step) {
  std::lock_guard<std::mutex> lock(State().mu);
  State().armed = step;
  State().armed_count = 0;
  State().counts.clear();
}

void ArmAtStep(long n) {
  std::lock_guard<std::mutex> lock(State().mu);
  State().armed.clear();
  State().armed_count = n;
  State().counts.clear();
}

void StartRecording() {
  std::lock_guard<std::mutex> lock(State().mu);
  State().recording = true;
  State().seen.clear();
  State().counts.clear();
}

std::vector<std::string> StopRecording() {
  std::lock_guard<std::mutex> lock(State().mu);
  State().recording = false;
  return std::move(State().seen);
}

}  // namespace fault
}  // namespace osu
