// `glide bench`: benchmark groups. `glide bench kernels` times the compute kernels on GLIDE's shapes.
//
// Adding a group (e.g. `glide bench step`): put `struct BenchStep: ParsableCommand` with
// `commandName: "step"` in its own file (e.g. Sources/GlideCLI/BenchStep.swift) and add `BenchStep.self`
// to `Bench.configuration.subcommands` below -- that one line is the only change needed here.
import ArgumentParser
import Foundation
import GlideModel
import Kernels

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks.",
        discussion: """
        kernels: the compute kernels' GFLOP/s; step: seconds per diffusion step of a model; sample: a whole \
        glide command timed in-process. Results and the exact commands are in BENCHMARKS.md.

        Example:
          glide bench kernels --threads 1
        """,
        subcommands: [BenchKernels.self, BenchStep.self, BenchSample.self]
    )
}

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "GFLOP/s of the matmul and convolution kernels on GLIDE's shapes, per weight dtype.",
        discussion: """
        Measures this machine's f32 FMA peak (all threads, same run) and reports each kernel's GFLOP/s and \
        fraction of that peak. Shapes: the base model's 3x3 convolutions (64x64x192 ... 8x8x768), the \
        upsampler's 256x256x192 convolution (batch 1), the UNet attention qkv projections, and the text \
        transformer's linear layers (T=128 tokens per batch item, width 512, 4x MLP). FLOPs = 2*M*N*K, for \
        convolutions those of the direct method: with Winograd (3x3 stride-1 convolutions of 16x16 and \
        larger, on by default) the figure is the equivalent rate and can exceed the FMA peak. \
        --no-winograd times the implicit-im2col GEMM instead.

        Compare with PyTorch: python tools/bench_torch.py --json

        Example:
          glide bench kernels --threads 1 --dtypes f32,int8
        """
    )

    @Flag(help: "Print a JSON list of {op, dtype, shape, gflops, peak_fraction, seconds} instead of a table.")
    var json = false

    @Option(help: "Worker threads (default: all CPUs).")
    var threads: Int?

    @Option(help: "Comma-separated weight dtypes to time (f32,f16,bf16,int8).")
    var dtypes: String = "f32,f16,bf16,int8"

    @Option(help: "Only shapes whose label contains this text (e.g. conv, linear, 64x64).")
    var filter: String?

    @Option(help: "Seconds of timing per case (after one warm-up run).")
    var seconds: Double = 0.3

    @Flag(help: "Skip the heavy upsampler 256x256 convolution.")
    var skipUpsampler = false

    @Flag(help: "Time with the thread's CPU time instead of wall time (requires --threads 1); insensitive to other load.")
    var cpuTime = false

    @Option(help: "int8 GEMM activation quantization bound (127 = int8 x int8, 32767 = int8 x int16).")
    var int8ActivationMax: Int = 32767

    @Flag(inversion: .prefixedNo, help: "Winograd for 3x3 stride-1 convolutions of 16x16 and larger (F(2x2, 3x3); int8 weights F(4x2, 3x3) at 32x32 and larger, env GLIDE_INT8_WINOGRAD_TILE).")
    var winograd = true

    @Option(help: "Cap the kernels' instruction-set level: avx512, avx2 or scalar (default: env GLIDE_CPU, else the best the CPU has).")
    var cpu: String?

    @Flag(inversion: .prefixedNo, help: "bf16 weights with vdpbf16ps (activations rounded to bf16) where the CPU has AVX512_BF16; --no-bf16-dot widens them to f32.")
    var bf16Dot = true

    mutating func run() throws {
        let command = self
        try ComputeOptions(threadCount: threads).perform { try command.measure() }
    }

    /// The benchmark itself, run with the thread count of --threads.
    func measure() throws {
        if cpuTime && KernelSettings.threadCount != 1 { throw ValidationError("--cpu-time needs --threads 1") }
        KernelSettings.int8ActivationMax = int8ActivationMax
        KernelSettings.winograd = winograd
        let dtypeList = dtypes.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        for d in dtypeList where !["f32", "f16", "bf16", "int8"].contains(d) {
            throw ValidationError("unknown dtype '\(d)' (use f32, f16, bf16, int8)")
        }
        if let cpu {
            guard let path = CPUPath(name: cpu) else { throw ValidationError("unknown --cpu '\(cpu)' (use avx512, avxvnni, avx2, scalar)") }
            KernelSettings.cpuCap = path
        }
        KernelSettings.bf16DotProducts = bf16Dot
        let threadCount = KernelSettings.threadCount
        // Peak of each instruction set this CPU has (measured in this run, whatever the cap).
        var peaks: [PeakProbe: Double] = [:]
        for probe in PeakProbe.allCases where probe.available {
            peaks[probe] = cpuTime ? measurePeakGFLOPS(probe, seconds: 0.3, cpuTime: true)
                                   : measurePeak(probe, threads: threadCount)
        }
        let peak = peaks[.fma256] ?? 0
        var records: [BenchRecord] = []
        records.append(BenchRecord(op: "fma_peak", dtype: "f32", label: "fma peak", shape: [("threads", threadCount)],
                                   gflops: peak, peakFraction: 1, seconds: 0, path: PeakProbe.fma256.rawValue))
        for probe in [PeakProbe.fma512, .bf16Dot512, .vnni512, .vnni256] {
            guard let p = peaks[probe] else { continue }
            records.append(BenchRecord(op: probe.recordName, dtype: probe.recordDType,
                                       label: probe.rawValue + " peak", shape: [("threads", threadCount)],
                                       gflops: p, peakFraction: 1, seconds: 0, path: probe.rawValue))
        }
        if !json {
            let features = KernelSettings.detectedFeatures.map(\.rawValue).sorted().joined(separator: " ")
            print("path \(KernelSettings.activePath) (cap \(KernelSettings.cpuCap), CPU supports \(KernelSettings.supportedPath): \(features)), threads \(threadCount)"
                  + (cpuTime ? " (thread CPU time)" : "") + (winograd ? ", Winograd on" : ", Winograd off"))
            print("peaks (GFLOP/s): " + PeakProbe.allCases.compactMap { p in peaks[p].map { "\(p.rawValue) \(benchFmt($0))" } }.joined(separator: ", "))
            print("int8 path \(KernelSettings.useAVX2 ? KernelSettings.int8Path.rawValue : "scalar")")
            for d in dtypeList { print("gemm path \(d): \(KernelSettings.gemmPath(for: WeightElementKind(rawValue: d)!))") }
            print("op       dtype  shape                               GFLOP/s  of peak  path")
        }
        for c in BenchCase.all(skipUpsampler: skipUpsampler) {
            if let filter, !c.label.contains(filter) { continue }
            for dtype in dtypeList {
                let (gflops, secs) = c.run(dtype: dtype, seconds: seconds, cpuTime: cpuTime)
                let path = c.path(dtype: dtype)
                // fraction of the peak of the instruction the path multiplies with
                let probe: PeakProbe = path.contains("vdpbf16ps") ? .bf16Dot512 : path.contains("avx512_vnni") ? .vnni512
                    : path.contains("avx_vnni") ? .vnni256 : path.contains("avx512") ? .fma512 : .fma256
                let pathPeak = peaks[probe] ?? 0
                let r = BenchRecord(op: c.op, dtype: dtype, label: c.label, shape: c.shape, gflops: gflops,
                                    peakFraction: pathPeak > 0 ? gflops / pathPeak : 0, seconds: secs, path: path)
                records.append(r)
                if !json {
                    print("\(benchPad(c.op, 8)) \(benchPad(dtype, 6)) \(benchPad(c.label, 35)) \(benchPad(benchFmt(gflops), 8))  \(benchPad(benchFmt(r.peakFraction * 100) + "%", 7))  \(path)")
                }
            }
        }
        if json { print("[\n" + records.map { $0.json }.joined(separator: ",\n") + "\n]") }
    }

    func measurePeak(_ probe: PeakProbe, threads: Int) -> Double {
        // Run the single-thread probe on every thread at once; sum the rates.
        let rates = RateSlots(count: threads)
        defer { rates.pointer.deallocate() }
        DispatchQueue.concurrentPerform(iterations: threads) { i in rates.pointer[i] = measurePeakGFLOPS(probe, seconds: 0.3) }
        return (0..<threads).reduce(0) { $0 + rates.pointer[$1] }
    }
}

/// One result slot per thread of the peak probe (each thread writes only its own slot).
private struct RateSlots: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Double>
    init(count: Int) { pointer = .allocate(capacity: count); pointer.initialize(repeating: 0, count: count) }
}

private func benchFmt(_ x: Double) -> String { String(format: "%.1f", x) }
private func benchPad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

struct BenchRecord {
    var op: String, dtype: String, label: String
    var shape: [(String, Int)]
    var gflops: Double, peakFraction: Double, seconds: Double
    /// The kernel path that ran (`KernelSettings.gemmPath` / `conv2dPath`); peak_fraction is of that
    /// path's instruction peak (avx2 fma, avx512 fma or avx512 vdpbf16ps) measured in the same run.
    var path: String = ""
    var json: String {
        let shapeJSON = shape.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ")
        return "  {\"op\": \"\(op)\", \"dtype\": \"\(dtype)\", \"label\": \"\(label)\", \"shape\": {\(shapeJSON)}, "
            + "\"gflops\": \(String(format: "%.2f", gflops)), \"peak_fraction\": \(String(format: "%.4f", peakFraction)), "
            + "\"seconds\": \(String(format: "%.6f", seconds)), \"path\": \"\(path)\"}"
    }
}

/// One benchmark shape: a convolution (NCHW) or a matmul `[M, K] x [K, N]` (weights [M, K]).
struct BenchCase {
    enum Kind { case conv(Conv2dGeometry), matmul(m: Int, n: Int, k: Int, tokenMajor: Bool) }
    var kind: Kind
    var label: String

    var op: String {
        switch kind { case .conv: return "conv2d"; case .matmul: return "matmul" }
    }
    var shape: [(String, Int)] {
        switch kind {
        case .conv(let g):
            return [("N", g.batch), ("C_in", g.inChannels), ("H", g.height), ("W", g.width), ("C_out", g.outChannels),
                    ("kernel", g.kernelSize), ("stride", g.stride)]
        case .matmul(let m, let n, let k, _): return [("M", m), ("N", n), ("K", k)]
        }
    }
    var flops: Double {
        switch kind {
        case .conv(let g): return g.flops
        case .matmul(let m, let n, let k, _): return 2 * Double(m) * Double(n) * Double(k)
        }
    }

    static func all(skipUpsampler: Bool) -> [BenchCase] {
        var cases: [BenchCase] = []
        for batch in [1, 2] {
            for (res, ch) in [(64, 192), (32, 384), (16, 576), (8, 768)] {
                let g = Conv2dGeometry(batch: batch, inChannels: ch, height: res, width: res, outChannels: ch,
                                       kernelSize: 3, stride: 1, padding: 1)
                cases.append(BenchCase(kind: .conv(g), label: "conv3x3 \(res)x\(res)x\(ch) b\(batch)"))
            }
        }
        // The base model's other convolution kinds (guided batch of 2): input, output, decoder (concatenated
        // skip: more in- than out-channels) and the 1x1 skip projection of such a block.
        for (label, g) in [
            ("conv3x3 64x64 3->192 b2 (in)", Conv2dGeometry(batch: 2, inChannels: 3, height: 64, width: 64, outChannels: 192, kernelSize: 3, stride: 1, padding: 1)),
            ("conv3x3 64x64 192->6 b2 (out)", Conv2dGeometry(batch: 2, inChannels: 192, height: 64, width: 64, outChannels: 6, kernelSize: 3, stride: 1, padding: 1)),
            ("conv3x3 32x32 768->384 b2 (decoder)", Conv2dGeometry(batch: 2, inChannels: 768, height: 32, width: 32, outChannels: 384, kernelSize: 3, stride: 1, padding: 1)),
            ("conv1x1 32x32 768->384 b2 (skip)", Conv2dGeometry(batch: 2, inChannels: 768, height: 32, width: 32, outChannels: 384, kernelSize: 1)),
        ] {
            cases.append(BenchCase(kind: .conv(g), label: label))
        }
        if !skipUpsampler {
            let g = Conv2dGeometry(batch: 1, inChannels: 192, height: 256, width: 256, outChannels: 192,
                                   kernelSize: 3, stride: 1, padding: 1)
            cases.append(BenchCase(kind: .conv(g), label: "conv3x3 256x256x192 b1 (upsampler)"))
        }
        for batch in [1, 2] {
            // UNet attention qkv projection (1x1 conv over T = H*W tokens): [3C, C] x [C, T*batch]
            for (res, ch) in [(32, 384), (16, 576), (8, 768)] {
                cases.append(BenchCase(kind: .matmul(m: 3 * ch, n: res * res * batch, k: ch, tokenMajor: false),
                                       label: "attn qkv \(res)x\(res)x\(ch) b\(batch)"))
            }
            // Text transformer (T = 128 tokens per item, width 512): qkv, MLP fc, MLP proj (token-major).
            let t = 128 * batch
            cases.append(BenchCase(kind: .matmul(m: 1536, n: t, k: 512, tokenMajor: true), label: "linear qkv 512->1536 T\(t)"))
            cases.append(BenchCase(kind: .matmul(m: 2048, n: t, k: 512, tokenMajor: true), label: "linear fc 512->2048 T\(t)"))
            cases.append(BenchCase(kind: .matmul(m: 512, n: t, k: 2048, tokenMajor: true), label: "linear proj 2048->512 T\(t)"))
        }
        return cases
    }

    /// The kernel path this case takes for `dtype` under the current settings.
    func path(dtype: String) -> String {
        let kind = WeightElementKind(rawValue: dtype) ?? .f32
        switch kind_ {
        case .conv(let g): return conv2dPath(g, kind: kind)
        case .matmul(_, let n, _, _): return KernelSettings.gemmPath(for: kind, columns: n)
        }
    }
    private var kind_: Kind { kind }

    /// Times the case; returns (GFLOP/s, seconds per run).
    func run(dtype: String, seconds: Double, cpuTime: Bool = false) -> (Double, Double) {
        let clock = cpuTime ? threadCPUSeconds : monotonicSeconds
        let (m, k): (Int, Int)
        switch kind {
        case .conv(let g): (m, k) = (g.outChannels, g.reductionLength)
        case .matmul(let mm, _, let kk, _): (m, k) = (mm, kk)
        }
        var rng = BenchRNG(seed: 42)
        let wf = (0..<(m * k)).map { _ in rng.nextFloat() * 0.05 }
        let f16 = wf.map(f32ToF16), bf16 = wf.map(f32ToBF16)
        var q = [Int8](repeating: 0, count: m * k), scales = [Float](repeating: 0, count: m)
        quantizeRowsInt8(wf, rows: m, cols: k, quantized: &q, scales: &scales)
        let inputCount: Int, outputCount: Int
        switch kind {
        case .conv(let g):
            inputCount = g.batch * g.inChannels * g.height * g.width
            outputCount = g.batch * g.outChannels * g.outHeight * g.outWidth
        case .matmul(let mm, let n, let kk, _):
            inputCount = kk * n; outputCount = mm * n
        }
        let x = (0..<inputCount).map { _ in rng.nextFloat() }
        var y = [Float](repeating: 0, count: outputCount)
        let bias = [Float](repeating: 0.1, count: m)

        func withWeight<R>(_ body: (WeightMatrix) -> R) -> R {
            switch dtype {
            case "f16": return f16.withUnsafeBufferPointer { body(WeightMatrix(rows: m, cols: k, elements: .f16($0.baseAddress!))) }
            case "bf16": return bf16.withUnsafeBufferPointer { body(WeightMatrix(rows: m, cols: k, elements: .bf16($0.baseAddress!))) }
            case "int8":
                return q.withUnsafeBufferPointer { qp in scales.withUnsafeBufferPointer { sp in
                    body(WeightMatrix(rows: m, cols: k, elements: .int8(qp.baseAddress!, scales: sp.baseAddress!)))
                } }
            default: return wf.withUnsafeBufferPointer { body(WeightMatrix(rows: m, cols: k, elements: .f32($0.baseAddress!))) }
            }
        }
        return withWeight { w in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { ybuf in
                    let yp = ybuf
                    let once: () -> Void
                    switch kind {
                    case .conv(let g):
                        once = { conv2d(input: xp.baseAddress!, weight: w, bias: bias, output: yp.baseAddress!, geometry: g) }
                    case .matmul(_, let n, _, let tokenMajor):
                        if tokenMajor {
                            once = { linear(input: xp.baseAddress!, rows: n, weight: w, bias: bias, output: yp.baseAddress!) }
                        } else {
                            once = {
                                gemm(weight: w, input: MatrixOperand(xp.baseAddress!, rowStride: n), columns: n,
                                     output: MutableMatrixOperand(yp.baseAddress!, rowStride: n), bias: bias)
                            }
                        }
                    }
                    once()   // warm-up
                    var runs = 0
                    var best = Double.infinity
                    let start = clock()
                    repeat {
                        let t0 = clock()
                        once()
                        best = min(best, clock() - t0)
                        runs += 1
                    } while clock() - start < seconds || runs < 2
                    return (flops / best / 1e9, best)
                }
            }
        }
    }
}

/// Tiny deterministic generator for benchmark data.
struct BenchRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}

extension PeakProbe {
    /// The `op` of the peak's JSON record.
    var recordName: String {
        switch self {
        case .fma256: return "fma_peak"
        case .fma512: return "fma512_peak"
        case .bf16Dot512: return "bf16_peak"
        case .vnni512: return "vnni512_peak"
        case .vnni256: return "vnni256_peak"
        }
    }
    /// The `dtype` of the peak's JSON record.
    var recordDType: String {
        switch self {
        case .fma256, .fma512: return "f32"
        case .bf16Dot512: return "bf16"
        case .vnni512, .vnni256: return "int8"
        }
    }
}
