// The single `ztslm` binary: everything is a subcommand in cli/.
#include <cstdio>
#include <cstdlib>
#include <new>

#include "cli/cli.h"

int main(int argc, char** argv) {
  // Allocation failure aborts (STYLE.md §4): sizes from untrusted input are limited before they
  // reach an allocator, so running out of memory here is a bug or an exhausted host.
  std::set_new_handler([] {
    std::fputs("ztslm: out of memory\n", stderr);
    std::abort();
  });
  return ztslm::cli::run(argc, argv);
}
