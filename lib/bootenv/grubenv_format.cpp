#include "bootenv/grubenv_format.hpp"

#include <set>
#include <vector>

namespace osu::grubenv {
namespace {

size_t EscapedLength(std::string_view value) {
  size_t n = 0;
  for (char c : value) n += (c == '\\' || c == '\n') ? 2u : 1u;
  return n;
}

}  // namespace

bool ValidName(std::string_view name) {
  if (name.empty() || name.front() == '#') return false;
  return name.find_first_of("=\\\n") == std::string_view::npos;
}

Block Block::Empty() {
  std::string buf(kSignature);
  buf += kWarning;
  buf.resize(kBlockSize, '#');
  return Block(std::move(buf));
}

Expected<Block> Block::Parse(std::string bytes) {
  if (bytes.size() != kBlockSize)
    return DeviceError("is " + std::to_string(bytes.size()) + " bytes, not " +
                       std::to_string(kBlockSize) + " (torn or not a grubenv)");
  if (bytes.compare(0, kSignature.size(), kSignature) != 0)
    return DeviceError("has no '# GRUB Environment Block' header");
  Block block(std::move(bytes));
  // save_env and grub-editenv refuse a block whose content does not end in a newline
  // before the '#' padding: GRUB could not count a boot attempt in it.
  size_t last = block.buf_.find_last_not_of('#');
  if (block.buf_[last] != '\n') return DeviceError("has no newline before its '#' padding");
  return block;
}

size_t Block::FreeSpaceStart() const { return buf_.find_last_not_of('#') + 1; }

size_t Block::NextLine(size_t p) const {
  while (p < buf_.size()) {
    if (buf_[p] == '\\')
      p += 2;
    else if (buf_[p] == '\n')
      break;
    else
      ++p;
  }
  return p + 1;
}

EnvVars Block::Vars() const {
  EnvVars vars;
  const size_t pend = buf_.size();
  size_t p = kSignature.size();
  while (p < pend) {
    if (buf_[p] != '#') {
      // As envblk.c: the name runs to the next '=' (even across a newline); a value runs to
      // an unescaped newline; a block that ends inside a line ends the listing.
      size_t name_start = p;
      while (p < pend && buf_[p] != '=') ++p;
      if (p == pend) return vars;
      size_t name_end = p++;
      size_t value_start = p;
      while (p < pend && buf_[p] != '\n') p += buf_[p] == '\\' ? 2u : 1u;
      if (p >= pend) return vars;
      std::string value;
      for (size_t q = value_start; q < p; ++q) {
        if (buf_[q] == '\\') ++q;
        value += buf_[q];
      }
      vars[buf_.substr(name_start, name_end - name_start)] = std::move(value);
    }
    p = NextLine(p);
  }
  return vars;
}

size_t Block::DropOverridden() {
  struct Line {
    std::string name;
    size_t start, end;  // [start, end): the whole line, its newline included
  };
  std::vector<Line> lines;
  const size_t pend = buf_.size();
  size_t p = kSignature.size();
  // The same walk as Vars() (envblk.c's iterate), keeping where each variable's line is.
  while (p < pend) {
    const size_t start = p;
    if (buf_[p] != '#') {
      while (p < pend && buf_[p] != '=') ++p;
      if (p == pend) break;
      const std::string name = buf_.substr(start, p - start);
      ++p;
      while (p < pend && buf_[p] != '\n') p += buf_[p] == '\\' ? 2u : 1u;
      if (p >= pend) break;
      lines.push_back({name, start, p + 1});
    }
    p = NextLine(p);
  }
  std::set<std::string> later;
  std::string kept = buf_.substr(0, kSignature.size());
  size_t from = kSignature.size(), removed = 0;
  std::vector<bool> drop(lines.size(), false);
  for (size_t i = lines.size(); i-- > 0;) drop[i] = !later.insert(lines[i].name).second;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!drop[i]) continue;
    kept += buf_.substr(from, lines[i].start - from);
    from = lines[i].end;
    ++removed;
  }
  kept += buf_.substr(from);
  kept.resize(pend, '#');
  buf_ = std::move(kept);
  return removed;
}

bool Block::Set(std::string_view name, std::string_view value) {
  const size_t nl = name.size();
  const size_t vl = EscapedLength(value);
  const size_t pend = buf_.size();
  const size_t space = FreeSpaceStart();
  size_t p = kSignature.size();
  bool found = false;
  while (p + nl + 1 < space) {
    if (buf_.compare(p, nl, name) == 0 && buf_[p + nl] == '=') {
      p += nl + 1;
      size_t len = 0;  // the escaped length of the current value
      while (p + len < pend && buf_[p + len] != '\n') len += buf_[p + len] == '\\' ? 2u : 1u;
      if (p + len >= pend) return false;
      if (vl > len && vl - len > pend - space) return false;
      if (vl < len) {
        // Shift the rest back and pad the end. (envblk.c pads at space + len - vl, which is
        // the same bytes whenever it stays inside the block; this is what it means.)
        std::string tail = buf_.substr(p + len);
        buf_.replace(p + vl, std::string::npos, tail);
        buf_.resize(pend, '#');
      } else {
        // Shift the rest forward; only padding falls off the end.
        std::string tail = buf_.substr(p + len, pend - (p + vl));
        buf_.replace(p + vl, tail.size(), tail);
      }
      found = true;
      break;
    }
    p = NextLine(p);
  }
  if (!found) {
    if (pend - space < nl + 1 + vl + 1) return false;
    buf_.replace(space, nl, name);
    p = space + nl;
    buf_[p++] = '=';
  }
  for (char c : value) {
    if (c == '\\' || c == '\n') buf_[p++] = '\\';
    buf_[p++] = c;
  }
  buf_[p] = '\n';
  return true;
}

void Block::Unset(std::string_view name) {
  const size_t nl = name.size();
  const size_t pend = buf_.size();
  size_t p = kSignature.size();
  while (p + nl + 1 < pend) {
    if (buf_.compare(p, nl, name) == 0 && buf_[p + nl] == '=') {
      size_t len = nl + 1;
      while (p + len < pend && buf_[p + len] != '\n') len += buf_[p + len] == '\\' ? 2u : 1u;
      if (p + len >= pend) return;
      ++len;
      buf_.erase(p, len);
      buf_.resize(pend, '#');
      return;
    }
    p = NextLine(p);
  }
}

}  // namespace osu::grubenv
