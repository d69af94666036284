// SwiftPM links each executable with `main` aliased to `<Target>_main`; provide those symbols (one per fuzzer
// executable; each executable defines its own `LLVMFuzzerTestOneInput` in Swift) and hand control to
// libFuzzer's driver. Every executable links all of them; only its own is its `main`.
#include "FuzzDriver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAIN(name) \
    int name##_main(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }

FUZZ_MAIN(CheckpointFuzzer)
FUZZ_MAIN(PNGFuzzer)
FUZZ_MAIN(JPEGFuzzer)
FUZZ_MAIN(NumpyFuzzer)
FUZZ_MAIN(GLWFuzzer)
FUZZ_MAIN(PNGTextFuzzer)
