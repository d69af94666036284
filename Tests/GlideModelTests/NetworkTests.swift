// Equivalence tests of the GLIDE networks against goldens from the genuine reference
// (Tests/Fixtures/model/, made by tools/make_model_goldens.py; see the README there), plus loading errors.
import Foundation
import XCTest
import Checkpoint
import Converter
import Kernels
import NumpyIO
import TestSupport
import WeightFormat
@testable import GlideModel

/// Tolerances, relative to the output's scale (max |reference|), per weight dtype.
enum NetworkTolerance {
    /// f32 weights: same math as PyTorch up to summation order.
    static let f32: Float = 1e-4
    /// f16 matrices and embeddings (vectors and tiny tensors stay f32); measured 2.1e-4 on tiny_base.
    static let f16: Float = 1e-3
    /// bf16 matrices and embeddings; measured 1.8e-3 on tiny_base.
    static let bf16: Float = 5e-3
    /// int8 per-row matrices (activations quantized on the fly by the kernels, 8 or 16 bits per the file's
    /// `activation_bits`), f16 embeddings; measured on tiny_base (glw-policy-2, AVX-512 VNNI): 1.0e-2 with the
    /// default per-role bits, 8.2e-3 with 16 bits everywhere, 1.05e-2 with 8 bits everywhere.
    static let int8: Float = 4e-2
    /// The int8 F(4x2) with the ResBlocks' norms folded into the convolutions' input transform vs materialised:
    /// the same math up to the SiLU's last bits, which can flip an activation's quantization step (1/qmax of its
    /// column's max); measured 3e-5 on tiny_base (Zen 5, AVX-512).
    static let fusedNorm: Float = 1e-3
}

final class NetworkTests: XCTestCase {
    // MARK: fixtures

    static let temporaryDirectory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("glide-network-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    override class func tearDown() {
        try? FileManager.default.removeItem(at: temporaryDirectory)
        super.tearDown()
    }

    func fixture(_ variant: String, _ file: String) -> URL { TestPaths.fixture("model/\(variant)/\(file)") }

    func npy(_ variant: String, _ name: String) throws -> NpyArray {
        try Npy.read(path: fixture(variant, name + ".npy").path)
    }

    func tensor(_ variant: String, _ name: String) throws -> FloatTensor {
        let a = try npy(variant, name)
        return FloatTensor(shape: a.shape, values: try a.floatValues())
    }

    /// Converts a fixture's model.pt into a .glw with the Converter module (`glide convert --config`).
    func convertedWeightFile(_ variant: String, dtype: WeightDType = .f32,
                             int8Activations: Int8ActivationChoice = .role) throws -> String {
        let path = Self.temporaryDirectory.appendingPathComponent("\(variant)-converted-\(dtype)-a\(int8Activations.rawValue).glw").path
        var options = ConversionOptions()
        options.target = dtype
        options.int8Activations = int8Activations
        options.configPath = fixture(variant, "options.json").path
        options.overwrite = true
        _ = try convertCheckpoint(source: fixture(variant, "model.pt").path, destination: path, options: options)
        return path
    }

    /// Converts a fixture's model.pt into a .glw with a small test-local writer (glw-policy-1 types), applying
    /// `edit` to the tensor list and `editOptions` to the hyperparameters first: for files the real
    /// converter would refuse to write.
    func makeWeightFile(_ variant: String, dtype: WeightDType = .f32, tag: String = "",
                        edit: (inout [(name: String, shape: [Int], values: [Float])]) -> Void = { _ in },
                        editOptions: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        let checkpoint = try TorchCheckpoint(path: fixture(variant, "model.pt").path)
        var tensors: [(name: String, shape: [Int], values: [Float])] = try checkpoint.tensors.map { t in
            XCTAssertEqual(t.dtype, .float32)
            var values = [Float](repeating: 0, count: t.elementCount)
            try values.withUnsafeMutableBytes { try t.copyContiguous(into: $0) }
            return (t.name, t.shape, values)
        }
        edit(&tensors)
        var options = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture(variant, "options.json"))) as! [String: Any]
        editOptions(&options)
        let metadata = try JSONSerialization.data(withJSONObject: ["format": "glw", "model": "unet", "hyperparameters": options],
                                                  options: [.sortedKeys])
        func storedType(_ name: String, _ shape: [Int]) -> WeightDType {
            if shape.count <= 1 || shape.reduce(1, *) < 16384 { return .f32 }
            if name.hasSuffix("embedding") || name.hasSuffix("embedding.weight") { return dtype == .int8 ? .f16 : dtype }
            return dtype
        }
        let plans = tensors.map { WeightEntryPlan.tensor($0.name, storedType($0.name, $0.shape), $0.shape) }
        let path = Self.temporaryDirectory.appendingPathComponent("\(variant)-\(dtype)\(tag).glw").path
        let writer = try WeightFileWriter(destination: path, overwrite: true,
                                          metadataJSON: String(decoding: metadata, as: UTF8.self), entries: plans)
        for (t, plan) in zip(tensors, plans) {
            switch plan.dtype! {
            case .f32: try t.values.withUnsafeBytes { try writer.write($0) }
            case .f16: try t.values.map { f32ToF16($0) }.withUnsafeBytes { try writer.write($0) }
            case .bf16: try t.values.map { f32ToBF16($0) }.withUnsafeBytes { try writer.write($0) }
            case .int8:
                let rows = t.shape[0], cols = t.values.count / rows
                var q = [Int8](repeating: 0, count: t.values.count)
                var scales = [Float](repeating: 0, count: rows)
                for r in 0..<rows {
                    let row = t.values[(r * cols)..<((r + 1) * cols)]
                    let m = row.map { abs($0) }.max() ?? 0
                    scales[r] = m / 127
                    if m > 0 { for c in 0..<cols { q[r * cols + c] = Int8(max(-127, min(127, (t.values[r * cols + c] / scales[r]).rounded()))) } }
                }
                try q.withUnsafeBytes { try writer.write($0) }
                try scales.withUnsafeBufferPointer { try writer.writeScales($0) }
            default: XCTFail("unexpected dtype")
            }
        }
        try writer.finish()
        return path
    }

    struct Inputs {
        var x: FloatTensor
        var timesteps: [Float]
        var tokens: [Int]
        var mask: [Bool]
        var extra: [String: FloatTensor]
    }

    func inputs(_ variant: String) throws -> Inputs {
        let x = try tensor(variant, "x")
        let t = try npy(variant, "timesteps")
        let timesteps = t.dtype == .int64 ? try t.intValues().map { Float($0) } : try t.floatValues()
        let tokens = try npy(variant, "tokens").intValues()
        let mask = try npy(variant, "mask").boolValues()
        var extra: [String: FloatTensor] = [:]
        for name in ["low_res", "inpaint_image", "inpaint_mask"]
        where FileManager.default.fileExists(atPath: fixture(variant, name + ".npy").path) {
            extra[name] = try tensor(variant, name)
        }
        return Inputs(x: x, timesteps: timesteps, tokens: tokens, mask: mask, extra: extra)
    }

    func run(_ model: Text2ImUNet, _ i: Inputs, observe: ((String, FloatTensor) -> Void)? = nil) throws -> FloatTensor {
        let text = try model.encodeText(tokens: i.tokens, mask: i.mask, batch: i.x.shape[0])
        return try model.forward(x: i.x, timesteps: i.timesteps, text: text, lowRes: i.extra["low_res"],
                                 inpaintImage: i.extra["inpaint_image"], inpaintMask: i.extra["inpaint_mask"],
                                 observe: observe)
    }

    /// max |a - b| / max |b|.
    func relativeError(_ a: FloatTensor, _ b: FloatTensor, file: StaticString = #filePath, line: UInt = #line) -> Float {
        XCTAssertEqual(a.shape, b.shape, file: file, line: line)
        guard a.shape == b.shape else { return .infinity }
        let scale = b.values.map { abs($0) }.max() ?? 0
        var worst: Float = 0
        for (x, y) in zip(a.values, b.values) { worst = max(worst, abs(x - y)) }
        return worst / max(scale, 1e-12)
    }

    // MARK: equivalence, f32

    func testTinyBaseMatchesReferenceWithActivations() throws {
        let model = try Text2ImUNet(path: try convertedWeightFile("tiny_base"))
        XCTAssertEqual(model.options.referenceClassName, "Text2ImUNet")
        let i = try inputs("tiny_base")
        let text = try model.encodeText(tokens: i.tokens, mask: i.mask, batch: 2)
        XCTAssertLessThan(relativeError(text.xfOutNCL, try tensor("tiny_base", "act_xf_out")), NetworkTolerance.f32)
        let proj = try tensor("tiny_base", "act_xf_proj")
        XCTAssertLessThan(relativeError(FloatTensor(shape: proj.shape, values: text.xfProj), proj), NetworkTolerance.f32)

        var seen: [String: FloatTensor] = [:]
        let out = try model.forward(x: i.x, timesteps: i.timesteps, text: text) { seen[$0] = $1 }
        let timeEmbed = try tensor("tiny_base", "act_time_embed")
        let emb = FloatTensor(shape: timeEmbed.shape, values: zip(timeEmbed.values, proj.values).map { $0 + $1 })
        XCTAssertLessThan(relativeError(seen["emb"]!, emb), NetworkTolerance.f32, "emb")
        var checked = 0
        for name in seen.keys.sorted() where name != "emb" {
            let reference = try tensor("tiny_base", "act_" + name)
            XCTAssertLessThan(relativeError(seen[name]!, reference), NetworkTolerance.f32, name)
            checked += 1
        }
        XCTAssertEqual(checked, 9)   // 4 input blocks, the middle block, 4 output blocks
        let error = relativeError(out, try tensor("tiny_base", "out"))
        print("tiny_base f32: max error / scale = \(error)")
        XCTAssertLessThan(error, NetworkTolerance.f32)
    }

    func testTinyVariantsMatchReference() throws {
        for (variant, className) in [("tiny_super_res", "SuperResText2ImUNet"), ("tiny_inpaint", "InpaintText2ImUNet"),
                                     ("tiny_super_res_inpaint", "SuperResInpaintText2ImUnet")] {
            let model = try Text2ImUNet(path: try convertedWeightFile(variant))
            XCTAssertEqual(model.options.referenceClassName, className)
            let out = try run(model, try inputs(variant))
            let error = relativeError(out, try tensor(variant, "out"))
            print("\(variant) f32: max error / scale = \(error)")
            XCTAssertLessThan(error, NetworkTolerance.f32, variant)
        }
    }

    func testTextConditioningIsReusableAcrossSteps() throws {
        let model = try Text2ImUNet(path: try makeWeightFile("tiny_base"))
        let i = try inputs("tiny_base")
        let text = try model.encodeText(tokens: i.tokens, mask: i.mask, batch: 2)
        let first = try model.forward(x: i.x, timesteps: [500, 3], text: text)
        let golden = try model.forward(x: i.x, timesteps: i.timesteps, text: text)
        let again = try model.forward(x: i.x, timesteps: [500, 3], text: text)
        XCTAssertEqual(first, again)
        XCTAssertLessThan(relativeError(golden, try tensor("tiny_base", "out")), NetworkTolerance.f32)
        // One row of a batch gives that row of the batched result.
        let row = try model.forward(x: FloatTensor(shape: [1, 3, 16, 16], values: Array(i.x.values[(3 * 256)...])),
                                    timesteps: [i.timesteps[1]], text: text.selecting(rows: [1]))
        let full = try tensor("tiny_base", "out")
        XCTAssertLessThan(relativeError(row, FloatTensor(shape: [1, 6, 16, 16], values: Array(full.values[(6 * 256)...]))),
                          NetworkTolerance.f32)
    }

    func testInPlaceConcatenationMatchesCopiedOne() throws {
        // Batch 1 output blocks read their skip and head through views of one buffer: the same bits as copies.
        let model = try Text2ImUNet(path: try makeWeightFile("tiny_base"))
        let i = try inputs("tiny_base")
        let text = try model.encodeText(tokens: i.tokens, mask: i.mask, batch: 2).selecting(rows: [1])
        let x = FloatTensor(shape: [1, 3, 16, 16], values: Array(i.x.values[(3 * 256)...]))
        let joined = try model.forward(x: x, timesteps: [i.timesteps[1]], text: text)
        UNetBody.joinsInPlace = false
        defer { UNetBody.joinsInPlace = true }
        let copied = try model.forward(x: x, timesteps: [i.timesteps[1]], text: text)
        XCTAssertEqual(joined, copied)
    }

    // MARK: CLIP encoders

    func testTinyClipEncodersMatchReference() throws {
        let text = try ClipEncoder(path: try convertedWeightFile("clip_text"))
        XCTAssertEqual(text.kind, .text)
        let textOut = try text.encodeText(tokens: try npy("clip_text", "tokens").intValues(),
                                          lengths: try npy("clip_text", "text_len").intValues())
        let textError = relativeError(textOut, try tensor("clip_text", "out"))
        print("clip_text f32: max error / scale = \(textError)")
        XCTAssertLessThan(textError, NetworkTolerance.f32)

        let image = try ClipEncoder(path: try convertedWeightFile("clip_image"))
        XCTAssertEqual(image.kind, .image)
        let imageOut = try image.encodeImage(try tensor("clip_image", "image"),
                                             timesteps: try npy("clip_image", "timesteps").intValues())
        let imageError = relativeError(imageOut, try tensor("clip_image", "out"))
        print("clip_image f32: max error / scale = \(imageError)")
        XCTAssertLessThan(imageError, NetworkTolerance.f32)

        let unit = ClipEncoder.normalized(imageOut)
        XCTAssertEqual(unit.values[0..<16].reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-5)
        XCTAssertThrowsError(try image.encodeImage(try tensor("clip_image", "image"), timesteps: [3, 1000])) {
            XCTAssertEqual($0 as? GlideModelError, .invalidInput(name: "timesteps", expected: "integers in 0..<1000", actual: "1000"))
        }
    }

    // MARK: quantized files

    func testQuantizedFilesWithinStatedTolerances() throws {
        let i = try inputs("tiny_base")
        let reference = try tensor("tiny_base", "out")
        for (dtype, tolerance) in [(WeightDType.f16, NetworkTolerance.f16), (.bf16, NetworkTolerance.bf16),
                                   (.int8, NetworkTolerance.int8)] {
            let model = try Text2ImUNet(path: try convertedWeightFile("tiny_base", dtype: dtype))
            let error = relativeError(try run(model, i), reference)
            print("tiny_base \(dtype): max error / scale = \(error)")
            XCTAssertLessThan(error, tolerance, "\(dtype)")
        }
    }

    /// GroupNorm (+ scale-shift + SiLU) folded into the next convolution's input (`conv2dFusesPreActivation`: the
    /// int8 F(4x2), forced here on the 16x16 tiny model) against the materialised norm, 1 and 2 threads; both
    /// within the int8 tolerance of the reference.
    func testFusedGroupNormMatchesMaterialised() throws {
        try XCTSkipUnless(KernelSettings.useAVX2, "CPU lacks avx2 (no integer Winograd: nothing fuses)")
        let i = try inputs("tiny_base")
        let reference = try tensor("tiny_base", "out")
        let model = try Text2ImUNet(path: try convertedWeightFile("tiny_base", dtype: .int8))
        let saved = (KernelSettings.fusedPreActivation, KernelSettings.int8WinogradTile, KernelSettings.threadCount)
        defer { (KernelSettings.fusedPreActivation, KernelSettings.int8WinogradTile, KernelSettings.threadCount) = saved }
        KernelSettings.int8WinogradTile = .f4x2
        for threads in [1, 2] {
            KernelSettings.threadCount = threads
            KernelSettings.fusedPreActivation = false
            let materialised = try run(model, i)
            KernelSettings.fusedPreActivation = true
            let fused = try run(model, i)
            let difference = relativeError(fused, materialised)
            print("tiny_base int8 F(4x2), norm fused vs materialised (\(threads) threads): \(difference)")
            XCTAssertLessThanOrEqual(difference, NetworkTolerance.fusedNorm)
            XCTAssertLessThan(relativeError(fused, reference), NetworkTolerance.int8)
        }
        // the fused run did fold norms: its profile has "group norm statistics" and "+preact" convolutions
        KernelSettings.fusedPreActivation = true
        KernelProfiler.reset()
        KernelProfiler.start()
        _ = try run(model, i)
        KernelProfiler.stop()
        let entries = KernelProfiler.entries
        KernelProfiler.reset()
        XCTAssertTrue(entries.contains { $0.kind == "group norm statistics" })
        XCTAssertTrue(entries.contains { $0.shape.hasSuffix("+preact") })
    }

    /// The file's per-tensor `activation_bits` reach the int8 kernels: 8- and 16-bit files give different outputs
    /// on the fast paths (the scalar path ignores the bits), and both stay within the int8 tolerance.
    func testInt8ActivationBitsFromTheFileReachTheKernels() throws {
        let i = try inputs("tiny_base")
        let reference = try tensor("tiny_base", "out")
        var outputs: [Int8ActivationChoice: FloatTensor] = [:]
        for choice in Int8ActivationChoice.allCases {
            let path = try convertedWeightFile("tiny_base", dtype: .int8, int8Activations: choice)
            XCTAssertFalse(try WeightFile(path: path).int8ActivationBits.isEmpty)
            let out = try run(try Text2ImUNet(path: path), i)
            let error = relativeError(out, reference)
            print("tiny_base int8, activations \(choice.rawValue): max error / scale = \(error)")
            XCTAssertLessThan(error, NetworkTolerance.int8, choice.rawValue)
            outputs[choice] = out
        }
        if KernelSettings.useAVX2 && !KernelSettings.int8ActivationMaxFromEnvironment {
            XCTAssertNotEqual(outputs[.all8]!.values, outputs[.all16]!.values)
        }
    }

    /// int8 weight panels packed once per model (`PackedWeightCache`, the file's pages released): the same
    /// bits as packing per call, on the first forward (filling), the next (reusing) and one after
    /// `releaseResidentMemory` (packing again), with 1 and 2 threads; the packed panels go with the model.
    func testPackedWeightCacheKeepsOutputsAndGoesWithTheModel() throws {
        let i = try inputs("tiny_base")
        let path = try convertedWeightFile("tiny_base", dtype: .int8)
        let saved = (KernelSettings.packedWeightCache, KernelSettings.threadCount)
        defer { (KernelSettings.packedWeightCache, KernelSettings.threadCount) = saved }
        KernelSettings.packedWeightCache = false
        let plain = try run(Text2ImUNet(path: path), i).values
        KernelSettings.packedWeightCache = true
        let before = PackedWeightCache.totalByteCount
        var held = 0
        for threads in [1, 2] {
            KernelSettings.threadCount = threads
            let model = try Text2ImUNet(path: path)
            XCTAssertEqual(try run(model, i).values, plain, "first forward, \(threads) thread(s)")
            held = PackedWeightCache.totalByteCount - before
            XCTAssertEqual(try run(model, i).values, plain, "second forward, \(threads) thread(s)")
            model.releaseResidentMemory()   // what a pipeline does with the base model before the upsampler
            XCTAssertEqual(PackedWeightCache.totalByteCount, before, "releaseResidentMemory kept packed panels")
            XCTAssertEqual(try run(model, i).values, plain, "forward after releaseResidentMemory, \(threads) thread(s)")
        }
        XCTAssertEqual(PackedWeightCache.totalByteCount, before, "packed panels outlived their model")
        if KernelSettings.int8Path != .avx2 && KernelSettings.useAVX2 {
            XCTAssertGreaterThan(held, 0, "no int8 weight was packed once on the \(KernelSettings.int8Path) path")
        }
    }

    /// Transformed int8 Winograd panels kept per model (`WinogradWeightCache`, budget `winogradCacheBudget`, the
    /// file's pages released): the same bits as transforming per call, on the first forward (filling), the next
    /// (reusing) and one after `releaseResidentMemory` (which drops them); a zero budget keeps nothing; the panels
    /// go with the model.
    func testWinogradWeightCacheKeepsOutputsAndGoesWithTheModel() throws {
        let i = try inputs("tiny_base")
        let path = try convertedWeightFile("tiny_base", dtype: .int8)
        let saved = (KernelSettings.winogradWeightCache, KernelSettings.threadCount, KernelSettings.winograd)
        defer { (KernelSettings.winogradWeightCache, KernelSettings.threadCount, KernelSettings.winograd) = saved }
        KernelSettings.winograd = true
        KernelSettings.winogradWeightCache = false
        let plain = try run(Text2ImUNet(path: path), i).values
        KernelSettings.winogradWeightCache = true
        let before = WinogradWeightCache.totalByteCount
        for threads in [1, 2] {
            KernelSettings.threadCount = threads
            let model = try Text2ImUNet(path: path)
            XCTAssertEqual(model.winogradCacheBudget, Text2ImUNet.defaultWinogradCacheBudget(model.options))
            model.winogradCacheBudget = 1 << 30
            XCTAssertEqual(try run(model, i).values, plain, "first forward, \(threads) thread(s)")
            let held = model.winogradCacheByteCount
            XCTAssertEqual(WinogradWeightCache.totalByteCount - before, held)
            XCTAssertEqual(try run(model, i).values, plain, "second forward, \(threads) thread(s)")
            XCTAssertEqual(model.winogradCacheByteCount, held, "the second forward transformed again")
            model.releaseResidentMemory()   // what a pipeline does with the base model before the upsampler
            XCTAssertEqual(model.winogradCacheByteCount, 0, "releaseResidentMemory kept Winograd panels")
            XCTAssertEqual(WinogradWeightCache.totalByteCount, before)
            model.winogradCacheBudget = 0
            XCTAssertEqual(try run(model, i).values, plain, "forward with no budget, \(threads) thread(s)")
            XCTAssertEqual(model.winogradCacheByteCount, 0)
            model.winogradCacheBudget = 1 << 30
            XCTAssertEqual(try run(model, i).values, plain, "forward after releaseResidentMemory, \(threads) thread(s)")
            XCTAssertEqual(model.winogradCacheByteCount, held)
            // Limited below what it holds (as the CLIP-guided pipeline does): dropped, refilled within the limit.
            model.limitWinogradCache(to: held - 1)
            XCTAssertEqual(model.winogradCacheBudget, max(0, held - 1))
            XCTAssertEqual(model.winogradCacheByteCount, 0)
            XCTAssertEqual(try run(model, i).values, plain, "forward after limitWinogradCache, \(threads) thread(s)")
            XCTAssertLessThan(model.winogradCacheByteCount, max(1, held))
            model.limitWinogradCache(to: 1 << 30)   // never raises
            XCTAssertEqual(model.winogradCacheBudget, max(0, held - 1))
            if KernelSettings.int8WinogradInIntegers {
                XCTAssertGreaterThan(held, 0, "no int8 Winograd convolution of the tiny model kept its panels")
            }
        }
        XCTAssertEqual(WinogradWeightCache.totalByteCount, before, "Winograd panels outlived their model")
    }

    // MARK: loading errors

    func testMissingTensorIsRejectedByName() throws {
        let path = try makeWeightFile("tiny_base", tag: "-missing") { $0.removeAll { $0.name == "middle_block.1.qkv.bias" } }
        XCTAssertThrowsError(try Text2ImUNet(path: path)) {
            XCTAssertEqual($0 as? GlideModelError, .missingTensor(name: "middle_block.1.qkv.bias", expectedShape: [96]))
        }
    }

    func testUnexpectedTensorIsRejectedByName() throws {
        let path = try makeWeightFile("tiny_base", tag: "-extra") { $0.append((name: "label_emb.weight", shape: [2], values: [0, 0])) }
        XCTAssertThrowsError(try Text2ImUNet(path: path)) {
            XCTAssertEqual($0 as? GlideModelError, .unexpectedTensor(name: "label_emb.weight", shape: [2]))
        }
    }

    func testMisshapenTensorIsRejectedByName() throws {
        let path = try makeWeightFile("tiny_base", tag: "-shape") { list in
            let k = list.firstIndex { $0.name == "out.2.bias" }!
            list[k] = (name: "out.2.bias", shape: [3], values: [0, 0, 0])
        }
        XCTAssertThrowsError(try Text2ImUNet(path: path)) {
            XCTAssertEqual($0 as? GlideModelError, .tensorShapeMismatch(name: "out.2.bias", expected: [6], actual: [3]))
        }
    }

    func testInvalidHyperparameterIsRejected() throws {
        let path = try makeWeightFile("tiny_base", tag: "-options", editOptions: { $0["attention_resolutions"] = "16,x" })
        XCTAssertThrowsError(try Text2ImUNet(path: path)) {
            XCTAssertEqual($0 as? GlideModelError, .invalidHyperparameter(name: "attention_resolutions",
                                                                       expected: "comma-separated integers", actual: "\"16,x\""))
        }
        // A wrong architecture option shows up as the first tensor that does not fit.
        let wide = try makeWeightFile("tiny_base", tag: "-wide", editOptions: { $0["num_channels"] = 64 })
        XCTAssertThrowsError(try Text2ImUNet(path: wide)) {
            XCTAssertEqual($0 as? GlideModelError, .tensorShapeMismatch(name: "transformer_proj.weight", expected: [256, 32], actual: [128, 32]))
        }
    }

    func testInvalidInputsAreRejectedByName() throws {
        let model = try Text2ImUNet(path: try makeWeightFile("tiny_base"))
        let i = try inputs("tiny_base")
        XCTAssertThrowsError(try model.encodeText(tokens: i.tokens.map { _ in 40 }, mask: i.mask, batch: 2)) {
            XCTAssertEqual($0 as? GlideModelError, .invalidInput(name: "tokens", expected: "ids in 0..<40", actual: "40"))
        }
        let text = try model.encodeText(tokens: i.tokens, mask: i.mask, batch: 2)
        XCTAssertThrowsError(try model.forward(x: i.x, timesteps: [1], text: text)) {
            XCTAssertEqual($0 as? GlideModelError, .invalidInput(name: "timesteps", expected: "[2]", actual: "[1]"))
        }
        XCTAssertThrowsError(try model.forward(x: i.x, timesteps: i.timesteps, text: text, lowRes: i.x)) {
            XCTAssertEqual($0 as? GlideModelError, .invalidInput(name: "low_res", expected: "none (not a super-resolution model)", actual: "a tensor"))
        }
        let sr = try Text2ImUNet(path: try makeWeightFile("tiny_super_res"))
        let j = try inputs("tiny_super_res")
        XCTAssertThrowsError(try sr.forward(x: j.x, timesteps: j.timesteps,
                                            text: try sr.encodeText(tokens: j.tokens, mask: j.mask, batch: 2))) {
            XCTAssertEqual($0 as? GlideModelError, .invalidInput(name: "low_res", expected: "[2, 3, h, w]", actual: "none"))
        }
    }

    func testUnsupportedTensorDTypeIsRejected() throws {
        // An i64 tensor where a weight belongs: written by hand since the test converter writes floats.
        let plans = [WeightEntryPlan.tensor("time_embed.0.weight", .i64, [128, 32])]
        let path = Self.temporaryDirectory.appendingPathComponent("i64.glw").path
        let writer = try WeightFileWriter(destination: path, overwrite: true,
                                          metadataJSON: #"{"format":"glw","hyperparameters":{"num_channels":32,"xf_width":0,"image_size":16,"channel_mult":"1,1","attention_resolutions":"8","num_res_blocks":1}}"#,
                                          entries: plans)
        try [Int64](repeating: 0, count: 128 * 32).withUnsafeBytes { try writer.write($0) }
        try writer.finish()
        XCTAssertThrowsError(try Text2ImUNet(path: path)) {
            XCTAssertEqual($0 as? GlideModelError, .unsupportedTensorDType(name: "time_embed.0.weight", expected: "f32, f16, bf16 or int8", actual: "i64"))
        }
    }
}
