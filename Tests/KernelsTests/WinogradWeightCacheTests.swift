// The transformed int8 Winograd weights kept across calls (WinogradWeightCache.swift): the same bits as the
// per-call transform, the byte budget, release, and the source pages dropped from a file mapping.
import Foundation
import XCTest
import CKernelsX86
@testable import Kernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class WinogradWeightCacheTests: XCTestCase {
    // (at least 16 output channels: fewer run on widened f32 weights)
    static let geometries = [
        Conv2dGeometry(batch: 2, inChannels: 9, height: 17, width: 23, outChannels: 20, kernelSize: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 300, height: 10, width: 9, outChannels: 33, kernelSize: 3, stride: 1, padding: 1),
    ]

    /// Panel bytes of one weight of geometry `g` with `positions` transformed positions and `mr`-row panels.
    func panelBytes(_ g: Conv2dGeometry, positions: Int, mr: Int) -> Int {
        4 * positions * glide_wi16_packed_words(Int32(g.outChannels), Int32(g.inChannels), Int32(mr))
    }

    /// `uses` convolutions in a row through the integer Winograd with `tile` on `path`, the weight view carrying
    /// `cache`: the outputs of every use (each from the same initial `y`).
    func run(_ g: Conv2dGeometry, tile: Int8WinogradTile, path: Int8GEMMPath, cache: WinogradWeightCache?,
             uses: Int = 1, threads: Int = 1, seed: UInt64, weights: TypedWeights? = nil,
             view: ((WeightMatrix) -> WeightMatrix)? = nil) -> [[Float]] {
        var rng = TestRNG(seed: seed)
        let w = weights ?? TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
        let bias = rng.floats(g.outChannels)
        let x = rng.floats(g.batch * g.inChannels * g.height * g.width, scale: 2)
        let y0 = rng.floats(g.batch * g.outChannels * g.outHeight * g.outWidth)
        let saved = (KernelSettings.int8WinogradMinimumTilesOverride, KernelSettings.int8WinogradTile)
        defer {
            KernelSettings.resetInt8Path()
            (KernelSettings.int8WinogradMinimumTilesOverride, KernelSettings.int8WinogradTile) = saved
        }
        var outputs: [[Float]] = []
        w.with("int8") { wm0 in
            var wm = view?(wm0) ?? wm0
            wm.winogradPanels = cache
            withSettings(threads: threads, winograd: true) {
                KernelSettings.int8Path = path
                KernelSettings.int8WinogradTile = tile
                KernelSettings.int8WinogradMinimumTilesOverride = 1
                XCTAssertTrue(conv2dUsesWinograd(g, int8Weights: true), "\(g)")
                XCTAssertFalse(int8ConvolutionRunsInF32(wm, g), "\(g) runs on widened weights")
                for _ in 0..<uses {
                    var y = y0
                    conv2d(input: x, weight: wm, bias: bias, output: &y, geometry: g, accumulate: true)
                    outputs.append(y)
                }
            }
        }
        return outputs
    }

    var paths: [Int8GEMMPath] {
        var paths: [Int8GEMMPath] = [.emulatedZMM, .emulatedYMM]
        if Int8GEMMPath.avx512vnni.isSupported { paths.append(.avx512vnni) }
        if Int8GEMMPath.avxvnni.isSupported { paths.append(.avxvnni) }
        return paths
    }

    /// Cached panels give the bits of the per-call transform: the three tiles, both panel heights, the intrinsic paths
    /// the CPU has, 1 and 3 threads, at the call that fills the cache and at the calls that reuse it.
    func testCachedPanelsBitIdentical() {
        var seed: UInt64 = 500
        for g in Self.geometries {
            for tile in [Int8WinogradTile.f2x2, .f4x2, .f4x4] {
                for path in paths {
                    seed += 1
                    let plain = run(g, tile: tile, path: path, cache: nil, seed: seed)[0]
                    for threads in [1, 3] {
                        let cache = WinogradWeightCache(budget: 1 << 30)
                        let ys = run(g, tile: tile, path: path, cache: cache, uses: 3, threads: threads, seed: seed)
                        for (i, y) in ys.enumerated() { XCTAssertEqual(y, plain, "\(g) \(tile) \(path) threads=\(threads) use \(i)") }
                        XCTAssertEqual(cache.entryCount, 1, "\(g) \(tile) \(path)")
                        let mr = path == .avx512vnni || path == .emulatedZMM ? Int(GLIDE_WI16_ZMM_MR) : Int(GLIDE_WI16_YMM_MR)
                        XCTAssertEqual(cache.byteCount, panelBytes(g, positions: tile == .f4x4 ? 36 : tile == .f4x2 ? 24 : 16, mr: mr))
                    }
                }
            }
        }
    }

    /// One cache serves a weight under each tile and both panel heights (separate entries), and the setting
    /// off (`KernelSettings.winogradWeightCache`) caches nothing with the same bits.
    func testKeysAndSwitch() {
        let g = Self.geometries[1]
        let cache = WinogradWeightCache(budget: 1 << 30)
        var expected = 0
        for (tile, positions) in [(Int8WinogradTile.f2x2, 16), (.f4x2, 24), (.f4x4, 36)] {
            for (path, mr) in [(Int8GEMMPath.emulatedZMM, Int(GLIDE_WI16_ZMM_MR)), (.emulatedYMM, Int(GLIDE_WI16_YMM_MR))] {
                let plain = run(g, tile: tile, path: path, cache: nil, seed: 9)[0]
                XCTAssertEqual(run(g, tile: tile, path: path, cache: cache, uses: 2, seed: 9), [plain, plain])
                expected += panelBytes(g, positions: positions, mr: mr)
                XCTAssertEqual(cache.byteCount, expected, "\(tile) \(path)")
            }
        }
        XCTAssertEqual(cache.entryCount, 6)

        let saved = KernelSettings.winogradWeightCache
        defer { KernelSettings.winogradWeightCache = saved }
        KernelSettings.winogradWeightCache = false
        let off = WinogradWeightCache(budget: 1 << 30)
        XCTAssertEqual(run(g, tile: .f4x2, path: .emulatedZMM, cache: off, uses: 2, seed: 9)[1],
                       run(g, tile: .f4x2, path: .emulatedZMM, cache: nil, seed: 9)[0])
        XCTAssertEqual(off.byteCount, 0)
    }

    /// Weights are admitted in first-use order while their panels fit the budget; the others are transformed per
    /// call (same bits); raising the budget admits them at their next use.
    func testBudget() {
        let g = Self.geometries[1]
        let bytes = panelBytes(g, positions: 16, mr: Int(GLIDE_WI16_ZMM_MR))
        var rng = TestRNG(seed: 77)
        let first = TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
        let second = TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
        let plainFirst = run(g, tile: .f2x2, path: .emulatedZMM, cache: nil, seed: 1, weights: first)[0]
        let plainSecond = run(g, tile: .f2x2, path: .emulatedZMM, cache: nil, seed: 2, weights: second)[0]

        // Too small for one weight: nothing held.
        let tiny = WinogradWeightCache(budget: bytes - 1)
        XCTAssertEqual(run(g, tile: .f2x2, path: .emulatedZMM, cache: tiny, uses: 2, seed: 1, weights: first),
                       [plainFirst, plainFirst])
        XCTAssertEqual(tiny.byteCount, 0)

        // Room for one and a half: the first used is held, the second not.
        let cache = WinogradWeightCache(budget: bytes + bytes / 2)
        XCTAssertEqual(run(g, tile: .f2x2, path: .emulatedZMM, cache: cache, uses: 2, seed: 1, weights: first),
                       [plainFirst, plainFirst])
        XCTAssertEqual(run(g, tile: .f2x2, path: .emulatedZMM, cache: cache, uses: 2, seed: 2, weights: second),
                       [plainSecond, plainSecond])
        XCTAssertEqual(cache.byteCount, bytes)
        XCTAssertEqual(cache.entryCount, 1)

        // Raised: the second is admitted at its next use.
        cache.budget = 2 * bytes
        XCTAssertEqual(run(g, tile: .f2x2, path: .emulatedZMM, cache: cache, seed: 2, weights: second)[0], plainSecond)
        XCTAssertEqual(cache.byteCount, 2 * bytes)
        XCTAssertEqual(cache.entryCount, 2)

        // Lowered: what is held stays until released; then only what fits comes back.
        cache.budget = bytes
        XCTAssertEqual(cache.byteCount, 2 * bytes)
        cache.release()
        XCTAssertEqual(cache.byteCount, 0)
        _ = run(g, tile: .f2x2, path: .emulatedZMM, cache: cache, seed: 2, weights: second)
        _ = run(g, tile: .f2x2, path: .emulatedZMM, cache: cache, seed: 1, weights: first)
        XCTAssertEqual(cache.byteCount, bytes)
        XCTAssertEqual(cache.budget, bytes)
        cache.budget = -5
        XCTAssertEqual(cache.budget, 0)
    }

    /// `release()` unmaps the panels (the process total drops; the next use fills again with the same bits), and
    /// the panels go with the cache's last owner.
    func testRelease() {
        let g = Self.geometries[0]
        let plain = run(g, tile: .f4x2, path: .emulatedYMM, cache: nil, seed: 3)[0]
        let before = WinogradWeightCache.totalByteCount
        weak var weakCache: WinogradWeightCache?
        do {
            let cache = WinogradWeightCache(budget: 1 << 30)
            weakCache = cache
            XCTAssertEqual(run(g, tile: .f4x2, path: .emulatedYMM, cache: cache, seed: 3)[0], plain)
            let bytes = cache.byteCount
            XCTAssertGreaterThan(bytes, 0)
            XCTAssertEqual(WinogradWeightCache.totalByteCount, before + bytes)
            cache.release()
            XCTAssertEqual(cache.byteCount, 0)
            XCTAssertEqual(cache.entryCount, 0)
            XCTAssertEqual(WinogradWeightCache.totalByteCount, before)
            XCTAssertEqual(run(g, tile: .f4x2, path: .emulatedYMM, cache: cache, uses: 2, seed: 3), [plain, plain])
            XCTAssertEqual(cache.byteCount, bytes)
        }
        XCTAssertNil(weakCache, "the cache outlived the weight views that held it")
        XCTAssertEqual(WinogradWeightCache.totalByteCount, before)
    }

    /// With `releasesSource` the int8 weights' pages of a read-only file mapping are dropped once their panels
    /// are cached (they reload from the file, so a later per-call use still reads the right values).
    func testReleasesSourcePages() throws {
        let g = Conv2dGeometry(batch: 1, inChannels: 64, height: 8, width: 8, outChannels: 32, kernelSize: 3, stride: 1, padding: 1)
        var rng = TestRNG(seed: 31)
        let w = TypedWeights(rows: g.outChannels, cols: g.reductionLength, rng: &rng)
        let plain = run(g, tile: .f2x2, path: .emulatedZMM, cache: nil, seed: 4, weights: w)[0]
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let count = w.q.count
        XCTAssertGreaterThan(count, 3 * page)
        let path = NSTemporaryDirectory() + "wcache-\(getpid()).bin"
        defer { unlink(path) }
        try Data(w.q.map { UInt8(bitPattern: $0) }).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let mapped = try XCTUnwrap(mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0))
        XCTAssertNotEqual(mapped, MAP_FAILED)
        defer { munmap(mapped, count) }
        let q = mapped.assumingMemoryBound(to: Int8.self)
        // Resident kB of the mapping in this process (/proc/self/smaps; nil where there is none).
        func residentKB() -> Int? {
            // (read line by line: Foundation's file reading stops early on /proc files)
            guard let file = fopen("/proc/self/smaps", "r") else { return nil }
            defer { fclose(file) }
            let start = String(UInt(bitPattern: mapped), radix: 16) + "-"
            var inside = false
            var buffer: UnsafeMutablePointer<CChar>? = nil, size = 0
            defer { free(buffer) }
            while getline(&buffer, &size, file) > 0, let buffer {
                let line = String(cString: buffer).trimmingCharacters(in: .newlines)
                if line.first?.isHexDigit == true && line.contains("-") && !line.hasSuffix(":") && line.split(separator: " ").count >= 5 {
                    inside = line.hasPrefix(start)
                } else if inside && line.hasPrefix("Rss:") {
                    return Int(line.split(separator: " ")[1])
                }
            }
            return nil
        }
        var sum = 0
        for i in stride(from: 0, to: count, by: 64) { sum &+= Int(q[i]) }   // touched, as a forward pass would
        XCTAssertEqual(sum, stride(from: 0, to: count, by: 64).reduce(0) { $0 &+ Int(w.q[$1]) })
        #if os(Linux)
        XCTAssertNotNil(residentKB(), "no /proc/self/smaps entry for the mapping")
        #endif
        if let kb = residentKB() { XCTAssertGreaterThanOrEqual(kb * 1024, 4 * page) }
        let fromFile: (WeightMatrix) -> WeightMatrix = { wm in
            guard case .int8(_, let scales) = wm.elements else { return wm }
            return WeightMatrix(rows: wm.rows, cols: wm.cols, elements: .int8(UnsafePointer(q), scales: scales))
        }
        let cache = WinogradWeightCache(budget: 1 << 30, releasesSource: true)
        XCTAssertEqual(run(g, tile: .f2x2, path: .emulatedZMM, cache: cache, uses: 2, seed: 4, weights: w, view: fromFile),
                       [plain, plain])
        XCTAssertEqual(cache.entryCount, 1)
        // Only the whole pages inside the weight go; the mapping starts page-aligned, so at most the last stays.
        if let kb = residentKB() { XCTAssertLessThanOrEqual(kb * 1024, page) }
        // Read again (no cache): the values come back from the file.
        XCTAssertEqual(run(g, tile: .f2x2, path: .emulatedZMM, cache: nil, seed: 4, weights: w, view: fromFile)[0], plain)
    }
}
