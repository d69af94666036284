// DPM-Solver++ samplers against an independent implementation (the `diffusers` package's
// DPMSolverMultistepScheduler with GLIDE's betas, fed the same ε and noise), their time-step spacings, the
// guidance interval, and the SDE variant's determinism across thread counts on the shipped digits model.
// Regenerate: /tmp/venv/bin/python tools/make_dpm_goldens.py  (writes Tests/Fixtures/dpm/dpm_goldens.json)
import Foundation
import TestSupport
import WeightFormat
import XCTest
@testable import GlideModel

/// Whole solver runs against diffusers: max |ours - theirs| relative to max(1, |theirs|). Both compute the
/// per-pixel update in float32; diffusers rounds its sigmas to float32 first and derives α, σ, λ from them in
/// float32, we use float64 coefficients rounded at use (measured worst: 5.1e-6).
private let solverTolerance: Float = 3e-5

final class DPMSolverTests: XCTestCase {
    private func goldens() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: TestPaths.fixture("dpm/dpm_goldens.json"))) as! [String: Any]
    }

    private func schedule(_ name: String) throws -> NoiseSchedule { try NoiseSchedule(name: name) }

    func testTimeSpacingIsDiffusersLinspace() throws {
        let root = try goldens()
        let linspace = root["diffusers_linspace"] as! [String: [Int]]
        XCTAssertEqual(linspace.count, 10)
        for (key, ref) in linspace {
            let parts = key.split(separator: "|").map(String.init)
            let ac = GaussianDiffusion.cumprod(try schedule(parts[0]).betas().map { 1 - $0 })
            XCTAssertEqual(try SolverSpacing.time.timesteps(count: Int(parts[1])!, alphasCumprod: ac), ref, key)
        }
    }

    func testSpacingsMatchGoldens() throws {
        let spacings = try goldens()["spacings"] as! [String: [Int]]
        XCTAssertEqual(spacings.count, 24)
        for (key, ref) in spacings {
            let parts = key.split(separator: "|").map(String.init)
            let ac = GaussianDiffusion.cumprod(try schedule(parts[0]).betas().map { 1 - $0 })
            let spacing = SolverSpacing(rawValue: parts[1])!
            let ours = try spacing.timesteps(count: Int(parts[2])!, alphasCumprod: ac)
            XCTAssertEqual(ours, ref, key)
            XCTAssertEqual(Set(ours).count, ours.count, "\(key): distinct")
            XCTAssertEqual(ours, ours.sorted(by: >), "\(key): descending")
        }
    }

    func testSolverRunsMatchDiffusers() throws {
        let cases = try goldens()["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 6)
        var worst: Float = 0
        for c in cases {
            let name = c["name"] as! String
            let steps = c["steps"] as! Int
            let shape = c["shape"] as! [Int]
            let sampler = SamplerKind(rawValue: c["sampler"] as! String)!
            let diffusion = try GaussianDiffusion(schedule: try schedule(c["schedule"] as! String), solverSteps: steps,
                                                  spacing: SolverSpacing(rawValue: c["spacing"] as! String)!)
            XCTAssertEqual(Array(diffusion.timestepMap.reversed()), c["timesteps"] as! [Int], name)
            let eps = (c["eps"] as! [[Double]]).map { $0.map(Float.init) }
            let noise = (c["noise"] as! [[Double]]).flatMap { $0.map(Float.init) }
            let xs = (c["xs"] as! [[Double]]).map { $0.map(Float.init) }
            let perRow = shape.dropFirst().reduce(1, *)
            var calls = 0
            var loop = try SamplingLoop(
                diffusion: diffusion, shape: shape, options: SamplingOptions(sampler: sampler),
                noise: SamplingNoise(seed: 0, start: (c["x_start"] as! [Double]).map(Float.init),
                                     steps: noise.isEmpty ? nil : noise),
                model: { x, t in
                    defer { calls += 1 }
                    XCTAssertEqual(t.first, (c["timesteps"] as! [Int])[calls], name)
                    var out: [Float] = []
                    for b in 0..<shape[0] {
                        out += eps[calls][(b * perRow)..<((b + 1) * perRow)]
                        out += [Float](repeating: 0, count: perRow)
                    }
                    return out
                })
            var k = 0
            while let p = try loop.next() {
                let ref = xs[k]
                let scale = max(1, ref.map(abs).max()!)
                let err = zip(p.sample, ref).map { abs($0 - $1) }.max()! / scale
                worst = max(worst, err)
                XCTAssertLessThan(err, solverTolerance, "\(name) step \(k)")
                k += 1
            }
            XCTAssertEqual(k, steps, name)
            XCTAssertEqual(calls, steps, name)
        }
        print("DPM-Solver++ vs diffusers: worst relative difference \(worst)")
    }

    func testLastStepReturnsTheDataPrediction() throws {
        var solver = DPMSolver(alphasCumprod: [0.9, 0.5, 0.1], stochastic: true)
        XCTAssertEqual(solver.count, 3)
        _ = solver.step(k: 0, x: [0.5], data: [0.2], noise: [1])
        _ = solver.step(k: 1, x: [0.5], data: [0.3], noise: [1])
        XCTAssertEqual(solver.step(k: 2, x: [0.5], data: [-0.7], noise: [1]), [-0.7])
    }

    func testGuidanceIntervalParsingAndErrors() throws {
        let g = try GuidanceInterval(parsing: "0.28, 2.9")
        XCTAssertEqual(g, GuidanceInterval.paper)
        XCTAssertEqual(g.description, "0.28,2.9")
        XCTAssertTrue(g.contains(sigma: 2.9))
        XCTAssertFalse(g.contains(sigma: 0.28))
        XCTAssertTrue(try GuidanceInterval(parsing: "1,inf").contains(sigma: 1e6))
        for bad in ["", "1", "a,b", "2,1", "1,1", "-1,2", "1,2,3"] {
            XCTAssertThrowsError(try GuidanceInterval(parsing: bad), bad) { error in
                guard case GlideModelError.invalidSetting(let name, _, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(name, "guidance interval")
            }
        }
    }

    func testSolverStepCountErrors() throws {
        let ac = GaussianDiffusion.cumprod(NoiseSchedule.linear.betas().map { 1 - $0 })
        for bad in [0, 1, 1001] {
            XCTAssertThrowsError(try SolverSpacing.time.timesteps(count: bad, alphasCumprod: ac)) { error in
                guard case GlideModelError.invalidSetting(let name, _, let actual) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(name, "solver steps")
                XCTAssertEqual(actual, "\(bad)")
            }
        }
        XCTAssertEqual(try SolverSpacing.logSNR.timesteps(count: 1000, alphasCumprod: ac), Array((0..<1000).reversed()))
    }

    /// The model sees 2 rows per image inside the interval and 1 outside; with no interval always 2.
    func testGuidanceIntervalHalvesRowsOutside() throws {
        let diffusion = try GaussianDiffusion(schedule: .squaredcosCapV2, solverSteps: 10, spacing: .time)
        let sigmas = diffusion.alphasCumprod.reversed().map { GuidanceInterval.sigma(alphaCumprod: $0) }
        for interval in [nil, GuidanceInterval.paper, try GuidanceInterval(low: 1e9, high: 2e9)] {
            var rows: [Int] = []
            let options = SamplingOptions(sampler: .dpmSolver2M, guidanceScale: 3, guidanceInterval: interval)
            _ = try diffusion.sample(shape: [2, 1, 2, 2], options: options, noise: SamplingNoise(seed: 1)) { x, t in
                rows.append(t.count)
                XCTAssertEqual(x.count, t.count * 4)
                // Conditional rows ε = 1, unconditional ε = 0: guided ε = 3, unguided 1.
                return (0..<t.count).flatMap { r in [Float](repeating: r < 2 ? 1 : 0, count: 4) + [Float](repeating: 0, count: 4) }
            }
            let expected = sigmas.map { interval?.contains(sigma: $0) ?? true ? 4 : 2 }
            XCTAssertEqual(rows, expected, "\(String(describing: interval))")
        }
        XCTAssertEqual(sigmas.filter { GuidanceInterval.paper.contains(sigma: $0) }.count, 6)   // t = 200...700
    }

    /// dpm++2m-sde on the shipped digits model (with a guidance interval, so both row counts run): the same seed
    /// gives bit-identical images on 1 and 2 threads and for a batch's first row alone; another seed differs.
    func testSDEIsDeterministicAcrossThreadCounts() throws {
        let url = TestPaths.packageRoot.appendingPathComponent("Models/digits-int8.glw")
        let file = try WeightFile(path: url.path)
        let stage = DiffusionStage(model: try Text2ImUNet(file: file))
        let tokenizer = try GPT2Tokenizer(files: file.tokenizerFiles)
        let ctx = stage.model.options.textCtx
        let prompts = ["the number 3", "a handwritten digit seven"].map { p -> TextTokens in
            let r = tokenizer.paddedTokensAndMask(tokenizer.encode(p), context: ctx)
            return TextTokens(tokens: r.tokens, mask: r.mask)
        }
        let empty = tokenizer.paddedTokensAndMask([], context: ctx)
        var settings = StageSettings(respacing: .steps(6), sampler: .dpmSolver2MSDE, guidanceScale: 3)
        settings.guidanceInterval = try GuidanceInterval(low: 0.5, high: 50)
        func run(batch: Int, threads: Int, seed: UInt64) throws -> [Float] {
            let inputs = StageInputs(prompts: Array(prompts.prefix(batch)),
                                     unconditional: TextTokens(tokens: empty.tokens, mask: empty.mask))
            var r = try stage.start(batch: batch, inputs: inputs, settings: settings, noise: SamplingNoise(seed: seed),
                                    compute: ComputeOptions(threadCount: threads))
            try r.finish()
            return r.finalOutput!.values
        }
        let one = try run(batch: 2, threads: 1, seed: 11)
        let two = try run(batch: 2, threads: 2, seed: 11)
        XCTAssertEqual(one, two)
        // A row's noise does not depend on the batch: the first row alone draws the same noise. Its pixels agree to
        // rounding only, since a convolution's path (Winograd or GEMM) depends on the tiles of the whole batch.
        let alone = try run(batch: 1, threads: 2, seed: 11)
        let largest = zip(alone, one.prefix(alone.count)).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(largest, 2e-3)
        XCTAssertNotEqual(try run(batch: 2, threads: 2, seed: 12), one)
    }
}
