// swift-tools-version:6.0
// libFuzzer target over the checkpoint reader (zip + legacy containers and the pickle subset).
// A separate package so the root's `swift test` never builds it. It compiles the root's Checkpoint
// and CZlib sources through the symlinks in Sources/ (so it needs no other root module). Build and run:
//   cd Fuzz && swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//   mkdir -p /tmp/fuzz-work && .build/release/CheckpointFuzzer /tmp/fuzz-work corpus -max_total_time=600
import PackageDescription

let package = Package(
    name: "GlideFuzz",
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib"),
        .target(name: "Checkpoint", dependencies: ["CZlib"]),
        .target(name: "FuzzDriver"),
        .executableTarget(name: "CheckpointFuzzer", dependencies: ["Checkpoint", "FuzzDriver"]),
    ],
    swiftLanguageModes: [.v6]
)
