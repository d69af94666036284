// SwiftPM links executables with `main` aliased to `<Target>_main`; provide that symbol and hand control
// to libFuzzer's driver with the Swift callback.
#include "FuzzDriver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int CheckpointFuzzer_main(int argc, char **argv) {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
