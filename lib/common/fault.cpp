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
  static const char* env = std::getenv("OSU_FAULT");
  FaultState& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  const int n = ++s.counts[name];
  const std::string step = n == 1 ? name : name + "#" + std::to_string(n);
  if (env && *env) {
    if (std::string(env) == "list") {
      std::cerr << "osu-fault: " << step << std::endl;
    } else if (step == env) {
      std::cerr << "osu-fault: stopping dead at " << step << std::endl;
      ::_exit(99);
    }
  }
  if (s.recording) s.seen.push_back(step);
  if (!s.armed.empty() && s.armed == step) {
    s.armed.clear();
    throw FaultInjected{step};
  }
}

namespace fault {

void ArmForTest(const std::string& step) {
  std::lock_guard<std::mutex> lock(State().mu);
  State().armed = step;
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
