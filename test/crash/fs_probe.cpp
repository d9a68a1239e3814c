// Runs the atomic-install helpers of lib/common/fd.hpp once, for the recorder (fsrecord.c) to
// watch: `osu-fs-probe install PATH TEXT` (InstallFile), `osu-fs-probe stage PATH TEXT` (the
// boot-file way: CreateStagedFile, write, fsync, RenameIntoPlace, SyncDirectory).
#include <unistd.h>

#include <cstdio>
#include <span>
#include <string>

#include "common/fd.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: osu-fs-probe install|stage PATH TEXT\n");
    return 1;
  }
  const std::string mode = argv[1], path = argv[2], text = argv[3];
  osu::Result r;
  if (mode == "install") {
    r = osu::InstallFile(path, text);
  } else {
    const std::string staged = osu::DirName(path) + "/." + osu::BaseName(path) + ".new";
    auto fd = osu::CreateStagedFile(staged);
    if (!fd) {
      r = fd.error();
    } else {
      std::span data(reinterpret_cast<const uint8_t*>(text.data()), text.size());
      r = osu::WriteAll(fd->get(), data, staged);
      if (r && ::fsync(fd->get()) != 0) r = osu::ErrnoError("fsync");
      if (r) r = osu::RenameIntoPlace(staged, path);
      if (r) r = osu::SyncDirectory(osu::DirName(path));
    }
  }
  if (!r) {
    std::fprintf(stderr, "osu-fs-probe: %s\n", r.error().message().c_str());
    return 1;
  }
  return 0;
}
