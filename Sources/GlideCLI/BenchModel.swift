// `glide bench step` and `glide bench sample`: whole-model timings (seconds per diffusion step, load time,
// peak RSS), the counterparts of tools/bench_torch_model.py on the PyTorch side.
import ArgumentParser
import Converter
import Foundation
import GlideModel
import Kernels
import WeightFormat

/// `glide bench step --model FILE.glw`: median seconds per model forward at the model's native shape.
struct BenchStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Seconds per diffusion step of a converted model, with load time and peak RSS.",
        discussion: """
        Loads the .glw file (memory-mapped; the weights stay in their stored type), then times --steps \
        forward passes after --warmup untimed ones, at the model's native shape with random inputs: \
        base-type models run the guided batch of 2 rows (prompt + empty prompt, as classifier-free guidance \
        does), upsamplers 1 row at 256x256 with a 64x64 low_res, inpainting models with an image and a mask.

        Our runtime computes the text transformer once per sample, so a step is the UNet alone; the text \
        transformer is timed separately. The reference recomputes it in every step: compare PyTorch's \
        step with our "step + text" number for the reference's way, and with "step" for what a sample costs.

        Peak RSS is the process's getrusage maximum (mapped weight pages count once they are touched).

        Compare with PyTorch (same shapes, the reference code):
          /tmp/venv/bin/python tools/bench_torch_model.py --run load,base-step --json
          /tmp/venv/bin/python tools/bench_torch_model.py --run load,upsample-step --json

        With --profile the timed steps also record where the time goes, per op kind and shape (each \
        convolution shape and path with its weight type, Winograd transforms, GEMM packing, attention per \
        resolution, norms, element-wise work): exclusive times that add up to the measured step, the \
        remainder printed as "unattributed". With --cpu-time (needs --threads 1) the profile uses the \
        thread's CPU clock, which other processes do not disturb.

        Examples:
          glide bench step --model base-int8.glw
          glide bench step --model upsample.glw --steps 3 --json
          glide bench step --model base-bf16.glw --threads 1 --steps 2 --profile --cpu-time
        """
    )

    @Option(help: ArgumentHelp("The converted model (.glw).", valueName: "file.glw"))
    var model: String

    @Option(help: "Rows per forward (default: 2 for base-type models, the guided batch; 1 for upsamplers).")
    var batch: Int?

    @Option(help: "Timed steps (the median is reported).")
    var steps: Int = 5

    @Option(help: "Untimed steps first.")
    var warmup: Int = 1

    @Option(help: "Worker threads (default: GLIDE_THREADS or all cores).")
    var threads: Int?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "No per-step lines on stderr.")
    var quiet = false

    @Flag(help: "Profile the timed steps per op kind and shape (printed after the report, or as \"profile\" in the JSON).")
    var profile = false

    @Flag(help: "With --profile: time with the calling thread's CPU clock (needs --threads 1).")
    var cpuTime = false

    func validate() throws {
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if cpuTime && (!profile || threads != 1) { throw ValidationError("--cpu-time needs --profile and --threads 1") }
    }

    func run() throws {
        try ComputeOptions(threadCount: threads).perform { try measure() }
    }

    /// The benchmark itself, run with the thread count of --threads.
    func measure() throws {
        let rssStart = ProcessMemory.currentRSSBytes()

        // Load the way `glide sample` does: map the file, bind the layers.
        let t0 = monotonicSeconds()
        let file: WeightFile
        let unet: Text2ImUNet
        do {
            file = try WeightFile(path: model)
            unet = try Text2ImUNet(file: file)
        } catch {
            failCommand("bench step", error)
        }
        let loadSeconds = monotonicSeconds() - t0
        let rssAfterLoad = ProcessMemory.currentRSSBytes()
        let peakAfterLoad = ProcessMemory.peakRSSBytes()
        let o = unet.options

        let rows = batch ?? (o.superRes ? 1 : 2)
        let size = o.imageSize
        let random = GaussianRNG(seed: 1)
        func inRange(_ n: Int, _ stream: UInt64) -> [Float] { random.normals(count: n, stream: stream, row: 0).map { max(-1, min(1, $0)) } }
        let x = FloatTensor(shape: [rows, 3, size, size], values: random.normals(count: rows * 3 * size * size, stream: 0, row: 0))
        let lowRes: FloatTensor? = o.superRes
            ? FloatTensor(shape: [rows, 3, size / 4, size / 4], values: inRange(rows * 3 * (size / 4) * (size / 4), 1))
            : nil
        let inpaintImage: FloatTensor? = o.inpaint
            ? FloatTensor(shape: [rows, 3, size, size], values: inRange(rows * 3 * size * size, 2)) : nil
        let inpaintMask: FloatTensor? = o.inpaint
            ? FloatTensor(shape: [rows, 1, size, size], values: (0..<(rows * size * size)).map { i in
                (i % (size * size)) < 20 * size ? 1 : 0  // the inpaint notebook's mask: top 20 rows kept
            }) : nil

        // Text: half the rows a short prompt, half the empty prompt (all padding), as guidance builds them.
        var textSeconds: [Double] = []
        var textCPU: [Double] = []
        var text: TextConditioning? = nil
        if let vocab = unet.vocabularySize {
            let (tokens, mask) = benchTokens(rows: rows, textCtx: o.textCtx, vocabularySize: vocab)
            for i in 0..<(1 + max(1, min(steps, 3))) {
                let (w, c) = try measure { text = try unet.encodeText(tokens: tokens, mask: mask, batch: rows) }
                if i > 0 { textSeconds.append(w); textCPU.append(c) }
            }
        }

        var stepSeconds: [Double] = []
        var stepCPU: [Double] = []
        let stride = max(1, o.diffusionSteps / max(1, warmup + steps))
        var profiledSeconds = 0.0
        var stepAllocations: [HeapAllocations] = []
        var heapBefore = HeapAllocations.mallocHeap.total
        for i in 0..<(warmup + steps) {
            if i == warmup { heapBefore = HeapAllocations.mallocHeap.total }
            let counted = HeapAllocations.current
            let t = Float(max(0, o.diffusionSteps - 1 - i * stride))
            if profile && i == warmup { KernelProfiler.start(threadCPUTime: cpuTime) }
            let p0 = profile ? KernelProfiler.now() : 0
            let (w, c) = try measure {
                _ = try unet.forward(x: x, timesteps: [Float](repeating: t, count: rows), text: text,
                                     lowRes: lowRes, inpaintImage: inpaintImage, inpaintMask: inpaintMask)
            }
            if profile && i >= warmup { profiledSeconds += KernelProfiler.now() - p0 }
            if !quiet {
                printToStderr("bench step: \(i < warmup ? "warm-up \(i + 1)" : "step \(i - warmup + 1)"): "
                              + String(format: "%.3f s (CPU %.3f s)", w, c))
            }
            if i >= warmup { stepSeconds.append(w); stepCPU.append(c); stepAllocations.append(HeapAllocations.current - counted) }
        }
        var stepProfile: StepProfile? = nil
        if profile {
            KernelProfiler.stop()
            stepProfile = StepProfile(entries: KernelProfiler.entries, steps: steps, measuredSeconds: profiledSeconds,
                                      clock: cpuTime ? "thread CPU" : "wall", threads: KernelSettings.threadCount,
                                      kernelPath: KernelSettings.activePath)
        }

        var report = StepReport(
            model: model, kind: o.referenceClassName, weightTypes: weightTypeSummary(file),
            fileBytes: file.fileSize, threads: KernelSettings.threadCount, batch: rows, imageSize: size,
            loadSeconds: loadSeconds, rssStartBytes: rssStart, rssAfterLoadBytes: rssAfterLoad,
            peakRSSAfterLoadBytes: peakAfterLoad, warmup: warmup, stepSeconds: stepSeconds, stepCPUSeconds: stepCPU,
            textSeconds: textSeconds, textCPUSeconds: textCPU, peakRSSBytes: ProcessMemory.peakRSSBytes())
        report.cpuPath = KernelSettings.activePath
        report.winogradCacheBytes = unet.winogradCacheByteCount
        report.stepAllocations = stepAllocations
        report.activationPoolBytes = unet.activationPoolByteCount
        report.scratchBytes = kernelScratchByteCount()
        report.mallocHeapBytes = (heapBefore, HeapAllocations.mallocHeap.total)
        report.winogradCacheBudget = unet.winogradCacheBudget
        report.gemmPaths = report.weightTypes.keys.sorted().compactMap { t in
            WeightElementKind(rawValue: t).map { (t, KernelSettings.gemmPath(for: $0)) }
        }
        if json {
            var out = report.json
            if let stepProfile { out = String(out.dropLast(2)) + ",\n  \"profile\": " + stepProfile.json + "\n}" }
            print(out)
        } else {
            print(report.text)
            if let stepProfile { print(stepProfile.text) }
        }
    }

    /// Wall and process CPU seconds of `body`.
    private func measure(_ body: () throws -> Void) throws -> (Double, Double) {
        let w0 = monotonicSeconds(), c0 = ProcessMemory.processCPUSeconds()
        try body()
        return (monotonicSeconds() - w0, ProcessMemory.processCPUSeconds() - c0)
    }
}

/// `glide bench sample -- <glide command and arguments>`: runs a whole `glide` command in this process and
/// reports its wall time, CPU time and peak RSS.
struct BenchSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Time a whole glide command (sample, upsample, inpaint) in-process, with peak RSS.",
        discussion: """
        Everything after `--` is a glide command line without the leading `glide`. The command runs \
        unchanged (load, text, every step, PNG output); afterwards the wall time, CPU time and peak RSS \
        (getrusage) of the whole run are printed on stderr, or as JSON on stdout with --json.

        Compare with PyTorch:
          /usr/bin/time -v /tmp/venv/bin/python tools/bench_torch_model.py --run base-sample --json
          /usr/bin/time -v /tmp/venv/bin/python tools/bench_torch_model.py --run text2im --json

        Examples:
          glide bench sample -- sample "an oil painting of a corgi" --model base-int8.glw --seed 0 -o corgi.png
          glide bench sample --json -- sample "a corgi" --model base.glw --upsampler upsample.glw --quiet
        """
    )

    @Flag(help: "Print one JSON object on stdout after the command finishes.")
    var json = false

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("-- then the glide command to time.",
                                                                  valueName: "command"))
    var command: [String] = []

    func run() throws {
        var args = command
        if args.first == "--" { args.removeFirst() }
        if args.first == "glide" { args.removeFirst() }
        guard let name = args.first else {
            throw ValidationError("give the command to time after --, e.g. glide bench sample -- sample \"a corgi\" --model base.glw")
        }
        guard name != "bench" else { throw ValidationError("glide bench sample cannot time itself") }
        var parsed: ParsableCommand
        do {
            parsed = try Glide.parseAsRoot(args)
        } catch {
            throw ValidationError("cannot parse `glide \(args.joined(separator: " "))`: \(Glide.message(for: error))")
        }
        let rss0 = ProcessMemory.peakRSSBytes()
        let w0 = monotonicSeconds(), c0 = ProcessMemory.processCPUSeconds()
        try parsed.run()
        let wall = monotonicSeconds() - w0, cpu = ProcessMemory.processCPUSeconds() - c0
        let peak = ProcessMemory.peakRSSBytes()
        if json {
            print("{\"command\": \(jsonString(args.joined(separator: " "))), \"seconds\": \(fmt3(wall)), "
                  + "\"cpu_seconds\": \(fmt3(cpu)), \"threads\": \(KernelSettings.threadCount), "
                  + "\"peak_rss_bytes\": \(peak), \"peak_rss_before_bytes\": \(rss0)}")
        } else {
            printToStderr("bench sample: `glide \(args.joined(separator: " "))`: \(fmt3(wall)) s wall, "
                          + "\(fmt3(cpu)) s CPU, peak RSS \(formatGiB(peak))")
        }
    }
}

// MARK: - Report

private struct StepReport {
    var model: String, kind: String, weightTypes: [String: Int]
    var fileBytes: Int, threads: Int, batch: Int, imageSize: Int
    var loadSeconds: Double, rssStartBytes: Int, rssAfterLoadBytes: Int, peakRSSAfterLoadBytes: Int
    var warmup: Int, stepSeconds: [Double], stepCPUSeconds: [Double]
    var textSeconds: [Double], textCPUSeconds: [Double]
    var peakRSSBytes: Int
    /// `KernelSettings.activePath` and the GEMM kernel per weight type of the file.
    var cpuPath = "", gemmPaths: [(String, String)] = []
    /// Transformed int8 Winograd weights the model kept (`Text2ImUNet.winogradCacheByteCount`) and its budget.
    var winogradCacheBytes = 0, winogradCacheBudget = 0
    /// Heap allocations counted during each timed step (`HeapAllocations`), the activation buffers the model keeps,
    /// the calling thread's kernel scratch stack, and glibc's heap size before the first timed step and after the last.
    var stepAllocations: [HeapAllocations] = [], activationPoolBytes = 0, scratchBytes = 0
    var mallocHeapBytes = (0, 0)

    var stepMedian: Double { median(stepSeconds) }
    var textMedian: Double { textSeconds.isEmpty ? 0 : median(textSeconds) }

    var text: String {
        let types = weightTypes.keys.sorted().map { "\(weightTypes[$0]!) \($0)" }.joined(separator: ", ")
        var lines = [
            "\(model): \(kind), \(formatGiB(fileBytes)) file, weight matrices \(types); \(threads) threads",
            "kernels: \(cpuPath); " + gemmPaths.map { "\($0.0) \($0.1)" }.joined(separator: ", "),
            "load: \(fmt3(loadSeconds)) s; RSS after load \(formatGiB(rssAfterLoadBytes))",
            "step (batch \(batch), \(imageSize)x\(imageSize)): median \(fmt3(stepMedian)) s over \(stepSeconds.count) "
                + "(min \(fmt3(stepSeconds.min()!)), max \(fmt3(stepSeconds.max()!)); CPU median \(fmt3(median(stepCPUSeconds))) s)",
        ]
        if !textSeconds.isEmpty {
            lines.append("text transformer (batch \(batch)): median \(fmt3(textMedian)) s; "
                         + "step + text (the reference's step): \(fmt3(stepMedian + textMedian)) s")
        }
        lines.append("peak RSS \(formatGiB(peakRSSBytes)); transformed Winograd weights kept "
                     + "\(formatGiB(winogradCacheBytes)) (budget \(formatGiB(winogradCacheBudget)))")
        if !stepAllocations.isEmpty {
            lines.append("heap allocations per step (counted: kernel scratch and activation buffers): "
                         + stepAllocations.map { "\($0.count) (>= 64 KiB: \($0.large), \(formatMiB($0.bytes)))" }.joined(separator: ", ")
                         + "; kept for reuse: activations \(formatMiB(activationPoolBytes)), scratch \(formatMiB(scratchBytes)) "
                         + "(main thread); malloc heap (mallinfo2) \(formatMiB(mallocHeapBytes.0)) before the first timed step, "
                         + "\(formatMiB(mallocHeapBytes.1)) after the last")
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        let types = weightTypes.keys.sorted().map { "\(jsonString($0)): \(weightTypes[$0]!)" }.joined(separator: ", ")
        let list: ([Double]) -> String = { "[" + $0.map(fmt6).joined(separator: ", ") + "]" }
        var fields = [
            "\"tool\": \"glide bench step\"", "\"model\": \(jsonString(model))", "\"kind\": \(jsonString(kind))",
            "\"weight_types\": {\(types)}", "\"file_bytes\": \(fileBytes)", "\"threads\": \(threads)",
            "\"cpu_path\": \(jsonString(cpuPath))",
            "\"gemm_paths\": {" + gemmPaths.map { "\(jsonString($0.0)): \(jsonString($0.1))" }.joined(separator: ", ") + "}",
            "\"batch\": \(batch)", "\"image_size\": \(imageSize)", "\"load_seconds\": \(fmt6(loadSeconds))",
            "\"rss_start_bytes\": \(rssStartBytes)", "\"rss_after_load_bytes\": \(rssAfterLoadBytes)",
            "\"peak_rss_after_load_bytes\": \(peakRSSAfterLoadBytes)", "\"warmup\": \(warmup)",
            "\"steps\": \(stepSeconds.count)", "\"median_seconds\": \(fmt6(stepMedian))",
            "\"min_seconds\": \(fmt6(stepSeconds.min()!))", "\"max_seconds\": \(fmt6(stepSeconds.max()!))",
            "\"step_seconds\": \(list(stepSeconds))", "\"step_cpu_seconds\": \(list(stepCPUSeconds))",
            "\"step_heap_allocations\": [" + stepAllocations.map { String($0.count) }.joined(separator: ", ") + "]",
            "\"step_heap_allocations_64k\": [" + stepAllocations.map { String($0.large) }.joined(separator: ", ") + "]",
            "\"activation_pool_bytes\": \(activationPoolBytes)", "\"scratch_bytes\": \(scratchBytes)",
            "\"malloc_heap_bytes_before\": \(mallocHeapBytes.0)", "\"malloc_heap_bytes_after\": \(mallocHeapBytes.1)",
        ]
        if !textSeconds.isEmpty {
            fields += [
                "\"text_transformer_median_seconds\": \(fmt6(textMedian))",
                "\"text_cpu_seconds\": \(list(textCPUSeconds))",
                "\"step_plus_text_median_seconds\": \(fmt6(stepMedian + textMedian))",
            ]
        }
        fields.append("\"peak_rss_bytes\": \(peakRSSBytes)")
        fields.append("\"winograd_cache_bytes\": \(winogradCacheBytes)")
        fields.append("\"winograd_cache_budget_bytes\": \(winogradCacheBudget)")
        return "{\n  " + fields.joined(separator: ",\n  ") + "\n}"
    }
}

/// Storage types of the file's matrices (tensors of rank >= 2), counted.
private func weightTypeSummary(_ file: WeightFile) -> [String: Int] {
    var counts: [String: Int] = [:]
    for name in file.tensorNames {
        guard let t = file.tensor(name), t.shape.count >= 2 else { continue }
        counts["\(t.dtype)", default: 0] += 1
    }
    return counts
}

/// Prompt rows get 8 fixed token ids then padding; empty-prompt rows are all padding (mask false),
/// as `padded_tokens_and_mask` lays them out. Padding is the last vocabulary id (`<|endoftext|>`).
private func benchTokens(rows: Int, textCtx: Int, vocabularySize: Int) -> ([Int], [Bool]) {
    let prompt = [464, 3056, 12036, 286, 257, 1162, 70, 72].map { $0 % max(1, vocabularySize - 1) }
    let pad = vocabularySize - 1
    var tokens: [Int] = [], mask: [Bool] = []
    let promptRows = rows == 1 ? 1 : rows / 2
    for r in 0..<rows {
        let n = r < promptRows ? min(prompt.count, textCtx) : 0
        tokens += Array(prompt.prefix(n)) + [Int](repeating: pad, count: textCtx - n)
        mask += [Bool](repeating: true, count: n) + [Bool](repeating: false, count: textCtx - n)
    }
    return (tokens, mask)
}

// MARK: - Process measurements

#if os(Linux)
private let rusageSelf = RUSAGE_SELF.rawValue
#else
private let rusageSelf = RUSAGE_SELF
#endif

/// Resident memory and CPU time of this process.
enum ProcessMemory {
    /// Peak resident set size (getrusage ru_maxrss, KiB on Linux) in bytes.
    static func peakRSSBytes() -> Int {
        var usage = rusage()
        getrusage(rusageSelf, &usage)
        return Int(usage.ru_maxrss) * 1024
    }

    /// Current resident set size from /proc/self/statm, in bytes (0 where unavailable).
    static func currentRSSBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = s.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// User + system CPU seconds of the whole process.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(rusageSelf, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) * 1e-6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) * 1e-6
        return user + system
    }
}

private func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return 0 }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
private func fmt3(_ x: Double) -> String { String(format: "%.3f", x) }
private func fmt6(_ x: Double) -> String { String(format: "%.6f", x) }
private func formatGiB(_ bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / 1_073_741_824) }
private func jsonString(_ s: String) -> String {
    var out = ""
    JSONValue.appendQuoted(s, to: &out)
    return out
}
private func formatMiB(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
