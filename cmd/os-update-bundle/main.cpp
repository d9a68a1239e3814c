#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return osu::cli::BundleMain(args, osu::cli::Streams{std::cin, std::cout, std::cerr});
}
