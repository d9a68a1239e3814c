// Test-only fault injection: os-update can be made to stop dead at any named step of
// --apply, --commit and --rollback (after every write, before every fsync, rename and env
// write), so that tests can prove every prefix of the sequence leaves a bootable device.
//
// Off unless armed by the test API below. Builds for testing (cmake -DOSU_FAULT_ENV=ON, as
// scripts/test.sh does) also read OSU_FAULT=<step> from the real binary's environment (then it
// _exit()s at that step, like a power cut that keeps the page cache); OSU_FAULT=list prints
// every step passed, one per line on stderr, prefixed "osu-fault: ". Released builds do not.
#pragma once

#include <string>
#include <vector>

namespace osu {

// Marks a step. Does nothing unless armed for this step.
void FaultPoint(const std::string& step);

// Thrown in-process instead of exiting, so a test can look at the disk afterwards.
struct FaultInjected {
  std::string step;
};

namespace fault {
// Arms in-process injection: FaultPoint(step) throws FaultInjected. "" disarms.
void ArmForTest(const std::string& step);
// Arms in-process injection at the n-th step passed from now on (1 = the first); 0 disarms.
void ArmAtStep(long n);
// Records every step passed (in order) until StopRecording().
void StartRecording();
std::vector<std::string> StopRecording();
}  // namespace fault

}  // namespace osu
