import Foundation
import XCTest

import Autograd
import Model

final class SafeTensorsTests: XCTestCase {
    /// Values whose bit patterns a careless writer or reader would change.
    static let awkward: [Float] = [
        0, -0.0, 1, -1, .pi, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNormalMagnitude,
        .leastNonzeroMagnitude, -.leastNonzeroMagnitude, Float(bitPattern: 0x0000_1234),
        .nan, -.nan, Float(bitPattern: 0x7FC0_0001), Float(bitPattern: 0x7F80_0001), 1e-30, 123_456.789,
    ]

    static let sample = SafeTensorsFile(
        tensors: [
            "model.embed_tokens.weight": StoredTensor(shape: [6, 3], data: awkward),
            "model.norm.weight": StoredTensor(shape: [3], data: [1, 2, 3]),
            "scalar": StoredTensor(shape: [], data: [42]),
            "empty": StoredTensor(shape: [0, 4], data: []),
        ],
        metadata: ["format": "pt", "ponder": "step \"7\"\n"])

    func testRoundTripIsBitExact() throws {
        let url = try temporaryDirectory().appendingPathComponent("model.safetensors")
        try Self.sample.write(to: url)
        let read = try SafeTensorsFile.read(from: url)
        XCTAssertEqual(read.metadata, Self.sample.metadata)
        XCTAssertEqual(Set(read.tensors.keys), Set(Self.sample.tensors.keys))
        for (name, tensor) in Self.sample.tensors {
            XCTAssertEqual(read.tensors[name]?.shape, tensor.shape, name)
            XCTAssertEqual(read.tensors[name]?.data.map(\.bitPattern), tensor.data.map(\.bitPattern), name)
        }
    }

    func testWriterMatchesReferenceBytes() {
        // The expected bytes are `test_serialization` in huggingface/safetensors' tensor.rs.
        let file = SafeTensorsFile(tensors: ["attn.0": StoredTensor(shape: [1, 2, 3], data: [0, 1, 2, 3, 4, 5])])
        let header = #"{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"#
        var expected: [UInt8] = [64, 0, 0, 0, 0, 0, 0, 0] + Array(header.utf8)
        expected += [0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64]
        XCTAssertEqual(Array(file.serialized()), expected)
        // Header padded with spaces to 8 bytes, as `test_empty` expects.
        XCTAssertEqual(
            Array(SafeTensorsFile().serialized()), [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
    }

    func testOutputIsDeterministicAndAligned() {
        let bytes = Self.sample.serialized()
        XCTAssertEqual(bytes, Self.sample.serialized())
        let length = Int(bytes[0]) | Int(bytes[1]) << 8
        XCTAssertEqual(length % 8, 0)
        let header = String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix(#"{"__metadata__":{"format":"pt","ponder":"step \"7\"\n"},"empty":"#), header)
    }

    func testReadsHalfAndBFloat16() throws {
        let halves: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x7C00, 0x7E00, 0x3555]
        let expected: [Float] = [1, -2, 65504, 0x1p-24, -0.0, .infinity, .nan, 0.333251953125]
        let brains: [UInt16] = [0x3F80, 0xC040, 0x0001, 0xFF80]
        let brainExpected: [Float] = [1, -3, Float(bitPattern: 0x0001_0000), -.infinity]
        let header =
            #"{"h":{"dtype":"F16","shape":[2,4],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}"#
        let bytes = Self.file(header: header, data: (halves + brains).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        let file = try SafeTensorsFile.parse(bytes)
        XCTAssertEqual(file.tensors["h"]?.shape, [2, 4])
        XCTAssertEqual(file.tensors["h"]?.data.map(\.bitPattern), expected.map(\.bitPattern))
        XCTAssertEqual(file.tensors["b"]?.data.map(\.bitPattern), brainExpected.map(\.bitPattern))
    }

    func testHalfConversionMatchesHardwareWhereAvailable() {
        #if arch(arm64) || (arch(x86_64) && !os(macOS))
            for bits in UInt16.min...UInt16.max {
                let reference = Float(Float16(bitPattern: bits))
                if reference.isNaN {
                    XCTAssertTrue(floatFromHalf(bits).isNaN)
                } else if floatFromHalf(bits).bitPattern != reference.bitPattern {
                    XCTFail("half \(String(bits, radix: 16)): \(floatFromHalf(bits)) ≠ \(reference)")
                    return
                }
            }
        #endif
    }

    // MARK: Malformed files

    /// A file from a header string and raw data, with the header length as given (or the true one).
    static func file(header: String, data: [UInt8], length: UInt64? = nil) -> Data {
        var out = Data()
        withUnsafeBytes(of: (length ?? UInt64(header.utf8.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + Data(header.utf8) + Data(data)
    }

    func assertRejects(
        _ bytes: Data, _ expected: SafeTensorsError.Problem, message: String? = nil, line: UInt = #line
    ) {
        XCTAssertThrowsError(try SafeTensorsFile.parse(bytes, file: "bad.safetensors"), line: line) { error in
            guard let error = error as? SafeTensorsError else { return XCTFail("untyped error \(error)", line: line) }
            XCTAssertEqual(error.file, "bad.safetensors", line: line)
            XCTAssertEqual(error.problem, expected, line: line)
            if let message { XCTAssertEqual(error.description, "bad.safetensors: " + message, line: line) }
        }
    }

    func entry(_ name: String, _ shape: [Int], _ begin: Int, _ end: Int, dtype: String = "F32") -> String {
        "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(begin),\(end)]}"
    }

    func testRejectsBadHeaderLengths() {
        assertRejects(Data([1, 2, 3]), .fileTooSmall(size: 3))
        assertRejects(Self.file(header: "{}", data: [], length: UInt64.max), .headerTooLarge(length: UInt64.max))
        assertRejects(
            Self.file(header: "{}", data: [], length: 100_000_001), .headerTooLarge(length: 100_000_001),
            message:
                "header length 100000001 exceeds the limit of 100000000 bytes; the file is corrupt or not safetensors")
        assertRejects(
            Self.file(header: "{}", data: [], length: 3), .headerPastEnd(length: 3, fileSize: 10),
            message: "header length 3 runs past the end of the file (10 bytes); the file is truncated or corrupt")
    }

    func testRejectsBadHeaders() {
        assertRejects(Self.file(header: "{\"a\":", data: []), .invalidHeader(reason: "header is not valid JSON"))
        assertRejects(
            Self.file(header: "{\"a\":" + String(repeating: "[", count: 100_000), data: []),
            .invalidHeader(reason: "header is not valid JSON"), message: "invalid header: header is not valid JSON")
        assertRejects(
            Self.file(header: "[]", data: []), .invalidHeader(reason: "header must be a JSON object starting with '{'"))
        assertRejects(
            Data(Self.file(header: "{\"\u{FF}\"}", data: []).map { $0 == 0xC3 ? 0xFF : $0 }),
            .invalidHeader(reason: "header is not valid UTF-8"))
        assertRejects(
            Self.file(header: #"{"__metadata__":{"a":1}}"#, data: []),
            .invalidHeader(reason: "__metadata__ must map strings to strings"))
        assertRejects(
            Self.file(header: #"{"w":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0]),
            .invalidEntry(
                name: "w",
                reason: #"needs "dtype": string, "shape": [int], "data_offsets": [begin, end] (bad "data_offsets")"#))
        XCTAssertThrowsError(
            try SafeTensorsFile.parse(
                Self.file(header: #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        ) {
            XCTAssertTrue($0 is SafeTensorsError)
        }
        assertRejects(
            Self.file(header: #"{"w":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
            .invalidEntry(
                name: "w", reason: #"needs "dtype": string, "shape": [int], "data_offsets": [begin, end] (bad "shape")"#
            ))
        assertRejects(
            Self.file(header: "{\(entry("w", [-1], 0, 4))}", data: [0, 0, 0, 0]),
            .invalidEntry(name: "w", reason: "shape [-1] has a negative dimension"))
        assertRejects(
            Self.file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: [0, 0, 0, 0]),
            .invalidEntry(name: "w", reason: "data_offsets [0] must be [begin, end], both non-negative"))
    }

    func testRejectsUnsupportedDtypeAndWrongSize() {
        assertRejects(
            Self.file(header: "{\(entry("w", [1], 0, 8, dtype: "I64"))}", data: Array(repeating: 0, count: 8)),
            .unsupportedDtype(name: "w", dtype: "I64"),
            message: "tensor 'w' has dtype I64; supported dtypes are F32, F16 and BF16")
        assertRejects(
            Self.file(header: "{\(entry("w", [2, 3], 0, 20))}", data: Array(repeating: 0, count: 20)),
            .sizeMismatch(name: "w", dtype: "F32", shape: [2, 3], byteCount: 20),
            message: "tensor 'w' (F32, shape [2, 3]) spans 20 bytes; it needs 6 elements × 4 bytes")
        let huge = Int.max / 2
        assertRejects(
            Self.file(header: "{\(entry("w", [huge, huge], 0, 4))}", data: [0, 0, 0, 0]),
            .sizeMismatch(name: "w", dtype: "F32", shape: [huge, huge], byteCount: 4))
    }

    func testRejectsBadOffsets() {
        let eight = [UInt8](repeating: 0, count: 8)
        assertRejects(
            Self.file(header: "{\(entry("a", [1], 0, 4)),\(entry("b", [2], 4, 12))}", data: eight),
            .offsetsOutOfRange(name: "b", begin: 4, end: 12, bufferSize: 8),
            message:
                "tensor 'b' has data_offsets [4, 12] past the end of the 8-byte data buffer; the file is truncated or corrupt"
        )
        assertRejects(
            Self.file(header: "{\(entry("a", [2], 0, 8)),\(entry("b", [1], 4, 8))}", data: eight),
            .invalidOffsets(name: "b", begin: 4, end: 8, expectedBegin: 8),
            message: "tensor 'b' has data_offsets [4, 8] (overlaps the previous tensor); it should begin at 8")
        assertRejects(
            Self.file(header: "{\(entry("a", [1], 4, 8))}", data: eight),
            .invalidOffsets(name: "a", begin: 4, end: 8, expectedBegin: 0),
            message: "tensor 'a' has data_offsets [4, 8] (leaves a gap after the previous tensor); it should begin at 0"
        )
        assertRejects(
            Self.file(header: "{\(entry("a", [0], 4, 0))}", data: eight),
            .invalidOffsets(name: "a", begin: 4, end: 0, expectedBegin: 0))
        assertRejects(
            Self.file(header: "{\(entry("a", [1], 0, 4))}", data: eight),
            .trailingBytes(covered: 4, bufferSize: 8),
            message: "tensors cover 4 of the 8 data bytes; the rest belongs to no tensor")
    }

    func testFuzzedFilesGiveTypedErrorsOnly() {
        let valid = Self.sample.serialized()
        var outcomes = (parsed: 0, rejected: 0)
        func check(_ bytes: Data) {
            do {
                _ = try SafeTensorsFile.parse(bytes)
                outcomes.parsed += 1
            } catch is SafeTensorsError {
                outcomes.rejected += 1
            } catch {
                XCTFail("untyped error \(error)")
            }
        }
        for length in 0..<valid.count { check(valid.prefix(length)) }
        var rng = RNG(seed: 3)
        for _ in 0..<3000 {
            var bytes = valid
            for _ in 0...(rng.next() % 3) {
                let i = Int(rng.next() % UInt64(bytes.count))
                bytes[i] ^= 1 << (rng.next() % 8)
            }
            check(bytes)
        }
        XCTAssertGreaterThan(outcomes.rejected, valid.count, "every truncation must be rejected")
        XCTAssertGreaterThan(outcomes.parsed, 0, "flips in the data buffer still parse")
    }

    // MARK: Required tensors

    func testRequireNamesTheTensorAndShape() throws {
        XCTAssertEqual(try Self.sample.require("model.norm.weight", shape: [3]), [1, 2, 3])
        XCTAssertThrowsError(try Self.sample.require("lm_head.weight", shape: [6, 3], file: "ck/model.safetensors")) {
            XCTAssertEqual("\($0)", "ck/model.safetensors: missing tensor 'lm_head.weight' (expected shape [6, 3])")
        }
        XCTAssertThrowsError(try Self.sample.require("model.norm.weight", shape: [4])) {
            XCTAssertEqual(
                ($0 as? SafeTensorsError)?.problem, .wrongShape(name: "model.norm.weight", expected: [4], found: [3]))
        }
        let specs = Self.sample.tensors.map { TensorSpec($0.key, $0.value.shape) }
        XCTAssertNoThrow(try Self.sample.validate(expected: specs))
        XCTAssertThrowsError(try Self.sample.validate(expected: specs.filter { $0.name != "scalar" })) {
            XCTAssertEqual(($0 as? SafeTensorsError)?.problem, .unexpectedTensor(name: "scalar"))
        }
    }

    // MARK: Atomic writes

    func testWriteReplacesAtomicallyAndLeavesNoTemporaryFiles() throws {
        let dir = try temporaryDirectory()
        let url = dir.appendingPathComponent("model.safetensors")
        try SafeTensorsFile(tensors: ["a": StoredTensor(shape: [1], data: [1])]).write(to: url)
        try Self.sample.write(to: url)
        XCTAssertEqual(try Data(contentsOf: url), Self.sample.serialized())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.safetensors"])
        let missing = dir.appendingPathComponent("no/such/dir/model.safetensors")
        XCTAssertThrowsError(try Self.sample.write(to: missing)) {
            XCTAssertEqual(($0 as? AtomicFileError)?.path, missing.path)
        }
        XCTAssertThrowsError(try SafeTensorsFile.read(from: missing)) {
            guard case .unreadable? = ($0 as? SafeTensorsError)?.problem else { return XCTFail("\($0)") }
        }
    }
}
