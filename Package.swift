// swift-tools-version:6.0
import PackageDescription

// Module graph (dependencies point one way, left to right):
//   CZlib, CJSONC, CJPEG, CKernelsX86   system libraries and the C SIMD micro-kernels
//   NumpyIO         .npy read/write                                      (none)
//   ElementConversion  f32 <-> f16/bf16 and the int8 reference quantizer (none)
//   Checkpoint      zip + legacy torch.save reader, pickle subset        (CZlib)
//   WeightFormat    our memory-mapped .glw weight file                   (CZlib, CJSONC)
//   Kernels         matmul/conv/norm/attention over raw buffers          (CKernelsX86, ElementConversion)
//   Imaging         PNG/JPEG decode, PNG encode, PIL-style resize        (CZlib, CJPEG)
//   GlideSpec       the reference's option defaults and checkpoint tensor names (WeightFormat)
//   GlideModel      tokenizers, text transformer, UNet, CLIP, diffusion  (Kernels, WeightFormat, GlideSpec)
//   Converter       torch checkpoint -> .glw, quantization               (Checkpoint, WeightFormat, ElementConversion, GlideSpec)
//   ModelStore      checked resumable downloads, manifests, the model cache, `setup` (Converter, WeightFormat)
//   GlideCLI        the `glide` executable (swift-argument-parser only here)
let package = Package(
    name: "Glide",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "glide", targets: ["GlideCLI"]),
        .library(name: "GlideKit", targets: [
            "Checkpoint", "WeightFormat", "ElementConversion", "GlideSpec", "Kernels", "Imaging", "GlideModel", "Converter", "NumpyIO", "ModelStore",
        ]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .systemLibrary(name: "CJSONC", pkgConfig: "json-c",
                       providers: [.apt(["libjson-c-dev"]), .brew(["json-c"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg62-turbo-dev"]), .brew(["jpeg-turbo"])]),
        .target(name: "CKernelsX86", cSettings: [.unsafeFlags(["-O3"])]),

        .target(name: "NumpyIO"),
        .target(name: "ElementConversion"),
        .target(name: "Checkpoint", dependencies: ["CZlib"]),
        .target(name: "WeightFormat", dependencies: ["CZlib", "CJSONC"]),
        .target(name: "Kernels", dependencies: ["CKernelsX86", "ElementConversion"], exclude: ["README.md"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .target(name: "CImagingShims", dependencies: ["CJPEG"]),
        .target(name: "Imaging", dependencies: ["CZlib", "CJPEG", "CImagingShims"], exclude: ["README.md"]),
        .target(name: "GlideSpec", dependencies: ["WeightFormat"]),
        .target(name: "GlideModel", dependencies: ["Kernels", "WeightFormat", "GlideSpec", "NumpyIO", "CZlib"],
                exclude: ["Diffusion/README.md", "Tokenizer/README.md", "Pipeline/README.md"]),
        .target(name: "Converter", dependencies: ["Checkpoint", "WeightFormat", "ElementConversion", "GlideSpec"]),
        .target(name: "ModelStore", dependencies: ["Converter", "WeightFormat"]),
        .executableTarget(name: "GlideCLI", dependencies: [
            "Checkpoint", "WeightFormat", "Kernels", "Imaging", "GlideModel", "Converter", "NumpyIO", "ModelStore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "NumpyIOTests", dependencies: ["NumpyIO", "TestSupport"]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "TestSupport"]),
        .testTarget(name: "WeightFormatTests", dependencies: ["WeightFormat", "TestSupport"]),
        .testTarget(name: "ElementConversionTests", dependencies: ["ElementConversion"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TestSupport"]),
        .testTarget(name: "GlideModelTests", dependencies: ["GlideModel", "WeightFormat", "Kernels", "NumpyIO", "Checkpoint", "Converter", "TestSupport"]),
        .testTarget(name: "ConverterTests", dependencies: ["Converter", "Checkpoint", "WeightFormat", "ElementConversion", "TestSupport"]),
        .testTarget(name: "ModelStoreTests", dependencies: ["ModelStore", "Converter", "WeightFormat", "TestSupport"]),
        .testTarget(name: "GlideCLITests", dependencies: ["GlideCLI", "TestSupport", "Imaging", "NumpyIO", "WeightFormat"]),
    ],
    swiftLanguageModes: [.v6]
)
