// A reader that holds a stream to the manifest's word: it fails as soon as the stream runs
// past the expected size (nothing more is read), and at its end if it is shorter or its
// sha256 differs. Boot files are checked with it; so is the decoded image by `verify`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "io/stream.hpp"

namespace osu {

// `what` names the data in messages: "'b.tar': boot file 'vmlinuz'". The errors are
// Verification errors: "<what>: sha256 mismatch (expected X, got Y)", "<what>: size
// mismatch (expected N bytes, got M)", "<what>: size mismatch (expected N bytes, got more)".
// Errors of `inner` keep their kind. Once at its end (or failed) it keeps answering the same.
std::unique_ptr<Reader> MakeCheckedReader(Reader& inner, uint64_t size, std::string sha256,
                                          std::string what);

}  // namespace osu
