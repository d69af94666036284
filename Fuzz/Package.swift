// swift-tools-version:6.0
// libFuzzer targets over every parser of user-supplied bytes: the checkpoint reader (zip + legacy containers
// and the pickle subset), the PNG decoder, the JPEG path (libjpeg-turbo behind our setjmp shim), `.npy`,
// the `.glw` header and tensor table, and the PNG text-chunk reader behind `glide sample --replay`.
// A separate package so the root's `swift test` never builds it. It compiles the root's modules through the
// symlinks in Sources/ (only those the parsers need). Build and run (see README.md):
//   cd Fuzz && swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//   mkdir -p /tmp/fuzz-png && .build/release/PNGFuzzer /tmp/fuzz-png corpus/png -max_total_time=600
import PackageDescription

let package = Package(
    name: "GlideFuzz",
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib"),
        .systemLibrary(name: "CJSONC", pkgConfig: "json-c"),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg"),
        .target(name: "CImagingShims", dependencies: ["CJPEG"]),
        .target(name: "Checkpoint", dependencies: ["CZlib"]),
        .target(name: "Imaging", dependencies: ["CZlib", "CJPEG", "CImagingShims"], exclude: ["README.md"]),
        .target(name: "NumpyIO"),
        .target(name: "WeightFormat", dependencies: ["CZlib", "CJSONC"]),
        .target(name: "FuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["CZlib"]),
        .executableTarget(name: "CheckpointFuzzer", dependencies: ["Checkpoint", "FuzzDriver"]),
        .executableTarget(name: "PNGFuzzer", dependencies: ["FuzzSupport", "Imaging", "FuzzDriver"]),
        .executableTarget(name: "JPEGFuzzer", dependencies: ["Imaging", "FuzzDriver"]),
        .executableTarget(name: "NumpyFuzzer", dependencies: ["NumpyIO", "FuzzDriver"]),
        .executableTarget(name: "PNGTextFuzzer", dependencies: ["FuzzSupport", "Imaging", "FuzzDriver"]),
        .executableTarget(name: "GLWFuzzer", dependencies: ["FuzzSupport", "WeightFormat", "FuzzDriver"]),
    ],
    swiftLanguageModes: [.v6]
)
