// os-update's command line for the crash-state test to record (under fsrecord.c): the code
// of cmd/os-update, with the test platform's activator, which records a kexec or reboot
// instead of doing it and allows activating from a disk image file.
#include <iostream>

#include "support/support.hpp"

int main(int argc, char** argv) {
  auto r = osu::test::RunUpdate(std::vector<std::string>(argv + 1, argv + argc));
  std::cout << r.out;
  std::cerr << r.err;
  return r.code;
}
