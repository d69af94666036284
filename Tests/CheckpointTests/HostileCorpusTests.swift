// One test per file of the hostile corpus (tools/make_hostile_corpus.py writes Tests/Fixtures/checkpoint/hostile/).
// Each asserts the exact error case and the offence it names; offsets are checked where they are easy to state.
import Foundation
import XCTest
import TestSupport
@testable import Checkpoint

/// The error case plus the name/opcode/field it carries (not offsets), e.g. "forbiddenGlobal os.system".
func summary(_ e: CheckpointError) -> String {
    switch e {
    case .cannotOpen: return "cannotOpen"
    case .unrecognizedFormat: return "unrecognizedFormat"
    case .noEndOfCentralDirectory: return "noEndOfCentralDirectory"
    case let .truncated(what, _, _, _): return "truncated \(what)"
    case .invalidCentralDirectory: return "invalidCentralDirectory"
    case let .inconsistentZip64(field, _, _): return "inconsistentZip64 \(field)"
    case .multiDiskArchive: return "multiDiskArchive"
    case let .duplicateEntry(name): return "duplicateEntry \(name)"
    case let .encryptedEntry(name): return "encryptedEntry \(name)"
    case let .unsupportedCompression(name, method): return "unsupportedCompression \(name) \(method)"
    case let .headerMismatch(name, field, _, _): return "headerMismatch \(name) \(field)"
    case let .entryOutOfBounds(name, _, _, _): return "entryOutOfBounds \(name)"
    case let .crcMismatch(name, _, _): return "crcMismatch \(name)"
    case let .inflateFailed(name, _): return "inflateFailed \(name)"
    case let .outputLimitExceeded(name, _, _): return "outputLimitExceeded \(name)"
    case let .entrySizeMismatch(name, _, _): return "entrySizeMismatch \(name)"
    case let .missingEntry(name): return "missingEntry \(name)"
    case let .unsupportedByteOrder(order): return "unsupportedByteOrder \(order)"
    case let .truncatedPickle(op, _): return "truncatedPickle \(op)"
    case let .unknownOpcode(byte, _): return "unknownOpcode \(byte)"
    case let .forbiddenOpcode(op, _): return "forbiddenOpcode \(op)"
    case let .forbiddenGlobal(name, _): return "forbiddenGlobal \(name)"
    case let .forbiddenCall(callable, _): return "forbiddenCall \(callable)"
    case let .invalidArguments(callable, _, _): return "invalidArguments \(callable)"
    case let .stackUnderflow(op, _): return "stackUnderflow \(op)"
    case let .missingMark(op, _): return "missingMark \(op)"
    case let .unexpectedType(op, _, _, _): return "unexpectedType \(op)"
    case let .invalidMemoKey(key, _): return "invalidMemoKey \(key)"
    case let .lengthExceedsInput(op, _, _, _): return "lengthExceedsInput \(op)"
    case let .invalidLiteral(op, _, _): return "invalidLiteral \(op)"
    case let .limitExceeded(what, _, _): return "limitExceeded \(what)"
    case .invalidPersistentID: return "invalidPersistentID"
    case let .missingStorage(key): return "missingStorage \(key)"
    case let .storageSizeMismatch(key, _, _): return "storageSizeMismatch \(key)"
    case let .storageConflict(key, _, _): return "storageConflict \(key)"
    case let .tensorOutOfBounds(name, _, _): return "tensorOutOfBounds \(name)"
    case let .invalidTensor(name, _): return "invalidTensor \(name)"
    case let .duplicateTensorName(name): return "duplicateTensorName \(name)"
    case let .bufferSizeMismatch(name, _, _): return "bufferSizeMismatch \(name)"
    case .invalidLegacyHeader: return "invalidLegacyHeader"
    }
}

final class HostileCorpusTests: XCTestCase {
    /// Opens hostile/<name>.pt and returns the error it must raise.
    func refusal(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> CheckpointError? {
        let path = TestPaths.fixture("checkpoint/hostile/\(name).pt").path
        do {
            _ = try TorchCheckpoint(path: path)
            XCTFail("\(name) was accepted", file: file, line: line)
            return nil
        } catch let error as CheckpointError {
            return error
        } catch {
            XCTFail("\(name): unexpected error type \(error)", file: file, line: line)
            return nil
        }
    }

    func expect(_ name: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let error = refusal(name, file: file, line: line) else { return }
        XCTAssertEqual(summary(error), expected, "\(name): \(error)", file: file, line: line)
        XCTAssertFalse(error.description.isEmpty)
        XCTAssertFalse(error.description.contains("\n"), "error text must be one line")
    }

    func testValidZipBaselineLoads() throws {
        let c = try TorchCheckpoint(path: TestPaths.fixture("checkpoint/hostile/valid_zip.pt").path)
        XCTAssertEqual(c.tensors.map(\.name), ["w", "b"])
        XCTAssertEqual(c.tensor(named: "w")?.withContiguousBytes { Array($0.bindMemory(to: Float.self)) }, [1, 2, 3, 4, 5, 6])
    }

    func testValidLegacyBaselineLoads() throws {
        let c = try TorchCheckpoint(path: TestPaths.fixture("checkpoint/hostile/valid_legacy.pt").path)
        XCTAssertEqual(c.format, .legacy)
        XCTAssertEqual(c.tensor(named: "b")?.withContiguousBytes { Array($0.bindMemory(to: Float.self)) }, [0.5, -0.5, 2])
    }

    /// The offset names the GLOBAL opcode's byte in the file (stored pickle: data offset + 2 bytes of PROTO).
    func testForbiddenGlobalOffsetIsTheOpcode() throws {
        guard let error = refusal("os_system_reduce") else { return }
        let bytes = try Data(contentsOf: TestPaths.fixture("checkpoint/hostile/os_system_reduce.pt"))
        let opcode = bytes.range(of: Data("cos\nsystem\n".utf8))!.lowerBound
        XCTAssertEqual(error, .forbiddenGlobal(name: "os.system", offset: opcode))
    }

    func testOsSystemReduce() { expect("os_system_reduce", "forbiddenGlobal os.system") }
    func testPosixSystemReduce() { expect("posix_system_reduce", "forbiddenGlobal posix.system") }
    func testBuiltinsEval() { expect("builtins_eval", "forbiddenGlobal builtins.eval") }
    func testSubprocessPopen() { expect("subprocess_popen", "forbiddenGlobal subprocess.Popen") }
    func testStackGlobalOsSystem() { expect("stack_global_os_system", "forbiddenGlobal os.system") }
    func testStackGlobalNonString() { expect("stack_global_non_string", "unexpectedType STACK_GLOBAL") }
    func testInstOpcode() { expect("inst_opcode", "forbiddenOpcode INST") }
    func testObjOpcode() { expect("obj_opcode", "forbiddenOpcode OBJ") }
    func testNewobjOpcode() { expect("newobj_opcode", "forbiddenOpcode NEWOBJ") }
    func testNewobjExOpcode() { expect("newobj_ex_opcode", "forbiddenOpcode NEWOBJ_EX") }
    func testExt1Opcode() { expect("ext1_opcode", "forbiddenOpcode EXT1") }
    func testTextPersid() { expect("text_persid", "forbiddenOpcode PERSID") }
    func testNextBuffer() { expect("next_buffer", "forbiddenOpcode NEXT_BUFFER") }
    func testCodecsEncodeBytes() { expect("codecs_encode_bytes", "forbiddenGlobal _codecs.encode") }
    func testBuildOnList() { expect("build_on_list", "forbiddenCall BUILD on list") }
    func testBuildOnTensor() { expect("build_on_tensor", "forbiddenCall BUILD on tensor") }
    func testReduceStorageClass() { expect("reduce_storage_class", "forbiddenCall torch.FloatStorage") }
    func testReduceNonGlobal() { expect("reduce_non_global", "forbiddenCall list") }
    func testRebuildWrongArity() { expect("rebuild_wrong_arity", "invalidArguments torch._utils._rebuild_tensor_v2") }
    func testSetitemsOnList() { expect("setitems_on_list", "unexpectedType SETITEMS") }
    func testAppendOnDict() { expect("append_on_dict", "unexpectedType APPEND") }
    func testUnhashableKey() { expect("unhashable_key", "unexpectedType SETITEM") }
    func testMemoGetMissing() { expect("memo_get_missing", "invalidMemoKey 5") }
    func testMemoSelfCycle() { expect("memo_self_cycle", "limitExceeded levels of nesting (or a reference cycle)") }
    func testMemoBillionLaughs() { expect("memo_billion_laughs", "limitExceeded values in the decoded structure") }
    func testDeepNesting() { expect("deep_nesting", "limitExceeded levels of nesting (or a reference cycle)") }
    func testStackUnderflow() { expect("stack_underflow", "stackUnderflow TUPLE2") }
    func testUnderflowBelowMark() { expect("underflow_below_mark", "stackUnderflow APPEND") }
    func testMissingMark() { expect("missing_mark", "missingMark TUPLE") }
    func testStackBomb() { expect("stack_bomb", "limitExceeded stack entries") }
    func testTruncatedOpcode() { expect("truncated_opcode", "truncatedPickle BININT") }
    func testMissingStop() { expect("missing_stop", "truncatedPickle STOP (missing)") }
    func testUnknownOpcode() { expect("unknown_opcode", "unknownOpcode 255") }
    func testProtocol6() { expect("protocol_6", "invalidLiteral PROTO") }
    func testHugeBinunicode() { expect("huge_binunicode", "lengthExceedsInput BINUNICODE") }
    func testHugeBinbytes8() { expect("huge_binbytes8", "lengthExceedsInput BINBYTES8") }
    func testHugeFrame() { expect("huge_frame", "lengthExceedsInput FRAME") }
    func testHugeLong4() { expect("huge_long4", "lengthExceedsInput LONG4") }
    func testHugeDecimalLong() { expect("huge_decimal_long", "limitExceeded decimal digits") }
    func testBadUtf8() { expect("bad_utf8", "invalidLiteral SHORT_BINUNICODE") }
    func testBadPersistentId() { expect("bad_persistent_id", "invalidPersistentID") }
    func testStorageNumelMismatch() { expect("storage_numel_mismatch", "storageSizeMismatch 0") }
    func testViewOutOfBounds() { expect("view_out_of_bounds", "tensorOutOfBounds w") }
    func testViewOffsetOutOfBounds() { expect("view_offset_out_of_bounds", "tensorOutOfBounds w") }
    func testViewStrideOverflow() { expect("view_stride_overflow", "tensorOutOfBounds w") }
    func testNegativeSize() { expect("negative_size", "invalidTensor w") }
    func testMissingStorage() { expect("missing_storage", "missingStorage 7") }
    func testStorageDtypeConflict() { expect("storage_dtype_conflict", "storageConflict 0") }
    func testDuplicateTensorName() { expect("duplicate_tensor_name", "duplicateTensorName a.b") }
    func testZipTruncated() { expect("zip_truncated", "noEndOfCentralDirectory") }
    func testZipCdOutOfRange() { expect("zip_cd_out_of_range", "truncated central directory") }
    func testZipEntryCountImpossible() { expect("zip_entry_count_impossible", "invalidCentralDirectory") }
    func testZipBadCdSignature() { expect("zip_bad_cd_signature", "invalidCentralDirectory") }
    func testZipWrongCrc() { expect("zip_wrong_crc", "crcMismatch h/data/0") }
    func testZipDuplicateNames() { expect("zip_duplicate_names", "duplicateEntry h/data/0") }
    func testZipEncryptedFlag() { expect("zip_encrypted_flag", "encryptedEntry h/data/1") }
    func testZipUnknownCompression() { expect("zip_unknown_compression", "unsupportedCompression h/data/1 12") }
    func testZipLocalNameMismatch() { expect("zip_local_name_mismatch", "headerMismatch h/data/1 name") }
    func testZipLocalMethodMismatch() { expect("zip_local_method_mismatch", "headerMismatch h/data/1 compression method") }
    func testZipLocalOffsetOutOfRange() { expect("zip_local_offset_out_of_range", "entryOutOfBounds h/data/1") }
    func testZipMultiDisk() { expect("zip_multi_disk", "multiDiskArchive") }
    func testZipMissingPickle() { expect("zip_missing_pickle", "missingEntry <archive>/data.pkl") }
    func testZipBigEndian() { expect("zip_big_endian", "unsupportedByteOrder big") }
    func testZipStoredSizeMismatch() { expect("zip_stored_size_mismatch", "entrySizeMismatch h/data.pkl") }
    func testZip64InconsistentCount() { expect("zip64_inconsistent_count", "inconsistentZip64 total entries") }
    func testZip64MissingExtra() { expect("zip64_missing_extra", "inconsistentZip64 extra field of 'h/data/0'") }
    func testZip64ShortExtra() { expect("zip64_short_extra", "inconsistentZip64 extra field of 'h/data/0'") }
    func testZip64BadRecordOffset() { expect("zip64_bad_record_offset", "inconsistentZip64 end of central directory offset") }
    func testDeflateCorruptStream() { expect("deflate_corrupt_stream", "inflateFailed h/data/0") }
    func testDeflateBomb() { expect("deflate_bomb", "outputLimitExceeded h/data.pkl") }
    func testDeflateImpossibleSize() { expect("deflate_impossible_size", "outputLimitExceeded h/data.pkl") }
    func testDeflateShortStream() { expect("deflate_short_stream", "entrySizeMismatch h/data.pkl") }
    func testLegacyBadMagic() { expect("legacy_bad_magic", "invalidLegacyHeader") }
    func testLegacyBadProtocol() { expect("legacy_bad_protocol", "invalidLegacyHeader") }
    func testLegacyBigEndian() { expect("legacy_big_endian", "unsupportedByteOrder big") }
    func testLegacyTruncatedStorage() { expect("legacy_truncated_storage", "truncated storage '1'") }
    func testLegacyNumelMismatch() { expect("legacy_numel_mismatch", "storageSizeMismatch 0") }
    func testLegacyUnreferencedKey() { expect("legacy_unreferenced_key", "invalidLegacyHeader") }
    func testLegacyMissingStorage() { expect("legacy_missing_storage", "missingStorage 1") }
    func testNotACheckpoint() { expect("not_a_checkpoint", "unrecognizedFormat") }
    func testEmptyFile() { expect("empty_file", "unrecognizedFormat") }
}
