// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
//
//   8 bytes   N, the header length, little-endian UInt64
//   N bytes   UTF-8 JSON: {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [b, e]}, …}
//   rest      the data buffer; data_offsets are relative to its start
//
// Reading is as strict as the reference Rust implementation: the header is at most 100 MB, every
// tensor's byte length equals its element count times its dtype size, and the tensors, sorted by
// offset, tile the data buffer exactly: no gap, no overlap, nothing after the last one.
// Writing matches `safetensors.serialize`: compact JSON, header padded with spaces to a multiple of
// 8 bytes so the data is aligned, tensors laid out in name order.

import Basics
import Foundation

/// One tensor as stored in a safetensors file: its shape and row-major values.
public struct StoredTensor: Equatable, Sendable {
    /// Dimensions, outermost first. `[]` is a scalar.
    public var shape: [Int]
    /// Row-major values; `data.count` is the product of `shape`.
    public var data: [Float]

    /// A tensor; `data.count` must equal the product of `shape`.
    public init(shape: [Int], data: [Float]) {
        precondition(data.count == shape.reduce(1, *), "StoredTensor: \(data.count) values for shape \(shape)")
        self.shape = shape
        self.data = data
    }
}

/// The name and shape a reader expects a tensor to have.
public struct TensorSpec: Equatable, Sendable, CustomStringConvertible {
    /// The tensor's name in the file, e.g. `model.norm.weight`.
    public var name: String
    /// The expected shape.
    public var shape: [Int]

    /// A spec for tensor `name` with `shape`.
    public init(_ name: String, _ shape: [Int]) {
        self.name = name
        self.shape = shape
    }

    public var description: String { "\(name) \(shape)" }
}

/// The contents of a safetensors file: named Float32 tensors plus string metadata.
///
/// Files are written as F32. F32, F16 and BF16 files are read, converted exactly to Float.
public struct SafeTensorsFile: Equatable, Sendable {
    /// The tensors by name.
    public var tensors: [String: StoredTensor]
    /// The free-form `__metadata__` map (for example `"format": "pt"`).
    public var metadata: [String: String]

    /// Largest header accepted, as in the reference implementation.
    public static let maxHeaderLength = 100_000_000

    /// A file with these tensors and metadata.
    public init(tensors: [String: StoredTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    // MARK: Access

    /// The values of tensor `name`, which must exist with exactly `shape`.
    /// `file` names the file in the error; `require` throws `.missingTensor` or `.wrongShape`.
    public func require(_ name: String, shape: [Int], file: String = "safetensors") throws -> [Float] {
        guard let tensor = tensors[name] else {
            throw SafeTensorsError(file: file, .missingTensor(name: name, expectedShape: shape))
        }
        guard tensor.shape == shape else {
            throw SafeTensorsError(file: file, .wrongShape(name: name, expected: shape, found: tensor.shape))
        }
        return tensor.data
    }

    /// `require`, and every value finite: what a model's weights must be (a diverged run's are not).
    public func requireWeights(_ name: String, shape: [Int], file: String = "safetensors") throws -> [Float] {
        let data = try require(name, shape: shape, file: file)
        if let bad = data.firstIndex(where: { !$0.isFinite }) {
            throw SafeTensorsError(file: file, .nonFinite(name: name, index: bad, value: data[bad]))
        }
        return data
    }

    /// Checks that the file holds exactly the `expected` tensors with their shapes: the first
    /// missing tensor, wrong shape, or tensor not in `expected` (in that order) is thrown.
    public func validate(expected: [TensorSpec], file: String = "safetensors") throws {
        for spec in expected { _ = try require(spec.name, shape: spec.shape, file: file) }
        let known = Set(expected.map(\.name))
        if let extra = tensors.keys.filter({ !known.contains($0) }).sorted().first {
            throw SafeTensorsError(file: file, .unexpectedTensor(name: extra))
        }
    }

    // MARK: Writing

    /// The file's bytes: F32 tensors in name order, header padded to 8 bytes. Deterministic.
    public func serialized() -> Data {
        // Byte order, not String's Unicode order, so the layout matches the Rust writer's.
        let names = tensors.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                .map { "\(JSONText.string($0)):\(JSONText.string(metadata[$0]!))" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for name in names {
            let tensor = tensors[name]!
            let end = offset + 4 * tensor.data.count
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(
                "\(JSONText.string(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        header += Array(repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)

        var out = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for name in names {
            let bits = tensors[name]!.data.map { $0.bitPattern.littleEndian }
            bits.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }

    /// Writes the file atomically (temporary file in the same directory, then rename).
    public func write(to url: URL) throws {
        try AtomicFile.write(serialized(), to: url)
    }

    // MARK: Reading

    /// Reads and validates the file at `url`. Every defect is a `SafeTensorsError` naming the file.
    public static func read(from url: URL) throws -> SafeTensorsFile {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw SafeTensorsError(file: url.path, .unreadable(reason: error.localizedDescription))
        }
        return try parse(bytes, file: url.path)
    }

    /// Parses and validates safetensors bytes; `file` names the source in errors.
    public static func parse(_ bytes: Data, file: String = "safetensors") throws -> SafeTensorsFile {
        func fail(_ problem: SafeTensorsError.Problem) -> SafeTensorsError {
            SafeTensorsError(file: file, problem)
        }
        guard bytes.count >= 8 else { throw fail(.fileTooSmall(size: bytes.count)) }
        let length = bytes.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length <= UInt64(maxHeaderLength) else { throw fail(.headerTooLarge(length: length)) }
        guard 8 + Int(length) <= bytes.count else {
            throw fail(.headerPastEnd(length: Int(length), fileSize: bytes.count))
        }
        let headerBytes = bytes.subdata(in: bytes.startIndex + 8..<bytes.startIndex + 8 + Int(length))
        let header = try parseHeader(headerBytes, fail: fail)

        // The tensors, in offset order, must tile the data buffer exactly.
        let bufferSize = bytes.count - 8 - Int(length)
        var cursor = 0
        let inOffsetOrder = header.entries.sorted { ($0.value.begin, $0.value.end) < ($1.value.begin, $1.value.end) }
        for (name, entry) in inOffsetOrder {
            guard entry.begin <= entry.end else {
                throw fail(.invalidOffsets(name: name, begin: entry.begin, end: entry.end, expectedBegin: cursor))
            }
            guard entry.end <= bufferSize else {
                throw fail(.offsetsOutOfRange(name: name, begin: entry.begin, end: entry.end, bufferSize: bufferSize))
            }
            guard entry.begin == cursor else {
                throw fail(.invalidOffsets(name: name, begin: entry.begin, end: entry.end, expectedBegin: cursor))
            }
            // Checked arithmetic: a corrupt shape must not trap.
            let (elements, overflowA) = entry.shape.reduce((1, false)) { acc, dim in
                let (product, overflow) = acc.0.multipliedReportingOverflow(by: dim)
                return (product, acc.1 || overflow)
            }
            let (needed, overflowB) = elements.multipliedReportingOverflow(by: entry.dtype.size)
            let spanned = entry.end - entry.begin
            guard !overflowA, !overflowB, needed == spanned else {
                let dtype = entry.dtype.rawValue
                throw fail(.sizeMismatch(name: name, dtype: dtype, shape: entry.shape, byteCount: spanned))
            }
            cursor = entry.end
        }
        guard cursor == bufferSize else { throw fail(.trailingBytes(covered: cursor, bufferSize: bufferSize)) }

        let dataStart = bytes.startIndex + 8 + Int(length)
        var tensors: [String: StoredTensor] = [:]
        bytes.withUnsafeBytes { raw in
            for (name, entry) in header.entries {
                let base = dataStart - bytes.startIndex + entry.begin
                let count = (entry.end - entry.begin) / entry.dtype.size
                tensors[name] = StoredTensor(
                    shape: entry.shape, data: decode(raw, from: base, count: count, as: entry.dtype))
            }
        }
        return SafeTensorsFile(tensors: tensors, metadata: header.metadata)
    }

    // MARK: Header parsing

    private struct Entry {
        var dtype: DType
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    private struct Header {
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
    }

    private static func parseHeader(
        _ data: Data, fail: (SafeTensorsError.Problem) -> SafeTensorsError
    ) throws -> Header {
        guard String(data: data, encoding: .utf8) != nil else {
            throw fail(.invalidHeader(reason: "header is not valid UTF-8"))
        }
        guard data.first == UInt8(ascii: "{") else {
            throw fail(.invalidHeader(reason: "header must be a JSON object starting with '{'"))
        }
        let raw: RawHeader
        do {
            raw = try JSONDecoder().decode(RawHeader.self, from: data)
        } catch {
            let path = codingPath(of: error).map(\.stringValue)
            if (try? JSONSerialization.jsonObject(with: data)) == nil {
                throw fail(.invalidHeader(reason: "header is not valid JSON"))
            }
            if path.first == "__metadata__" {
                throw fail(.invalidHeader(reason: "__metadata__ must map strings to strings"))
            }
            let entryForm = "needs \"dtype\": string, \"shape\": [int], \"data_offsets\": [begin, end]"
            guard let name = path.first else {
                // Some Foundation versions report a fractional integer without a coding path.
                throw fail(.invalidHeader(reason: "every tensor entry " + entryForm))
            }
            let field = path.count > 1 ? " (bad \"\(path[1])\")" : ""
            throw fail(.invalidEntry(name: name, reason: entryForm + field))
        }
        var header = Header(metadata: raw.metadata)
        for (name, entry) in raw.entries {
            guard let dtype = DType(rawValue: entry.dtype) else {
                throw fail(.unsupportedDtype(name: name, dtype: entry.dtype))
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }) else {
                throw fail(.invalidEntry(name: name, reason: "shape \(entry.shape) has a negative dimension"))
            }
            guard entry.data_offsets.count == 2, entry.data_offsets.allSatisfy({ $0 >= 0 }) else {
                let reason = "data_offsets \(entry.data_offsets) must be [begin, end], both non-negative"
                throw fail(.invalidEntry(name: name, reason: reason))
            }
            header.entries[name] = Entry(
                dtype: dtype, shape: entry.shape, begin: entry.data_offsets[0], end: entry.data_offsets[1])
        }
        return header
    }

    /// The header as JSON: tensor entries plus the optional `__metadata__` map.
    private struct RawHeader: Decodable {
        struct RawEntry: Decodable {
            var dtype: String
            var shape: [Int]
            var data_offsets: [Int]
        }

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        var entries: [String: RawEntry] = [:]
        var metadata: [String: String] = [:]

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            for key in container.allKeys {
                if key.stringValue == "__metadata__" {
                    metadata = try container.decode([String: String].self, forKey: key)
                } else {
                    entries[key.stringValue] = try container.decode(RawEntry.self, forKey: key)
                }
            }
        }
    }
}

/// Element types that Ponder reads. Other safetensors dtypes are rejected as unsupported.
enum DType: String {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"

    var size: Int { self == .f32 ? 4 : 2 }
}

/// Decodes `count` little-endian elements starting at byte `offset`, exactly, to Float.
private func decode(_ raw: UnsafeRawBufferPointer, from offset: Int, count: Int, as dtype: DType) -> [Float] {
    switch dtype {
    case .f32:
        return (0..<count).map {
            Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 * $0, as: UInt32.self)))
        }
    case .bf16:
        // BF16 is the top half of an F32.
        return (0..<count).map {
            let half = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 2 * $0, as: UInt16.self))
            return Float(bitPattern: UInt32(half) << 16)
        }
    case .f16:
        return (0..<count).map {
            floatFromHalf(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 2 * $0, as: UInt16.self)))
        }
    }
}

/// IEEE binary16 bits to Float, exactly (every half is representable), keeping NaN payloads.
public func floatFromHalf(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h) & 0x3FF
    switch exponent {
    case 0:
        // Zero or subnormal: mantissa × 2^-24, exact in Float.
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    case 0x1F:
        return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
    default:
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }
}

// MARK: Errors

/// A safetensors file that cannot be used, naming the file, the tensor, and what would be right.
public struct SafeTensorsError: Error, Equatable, CustomStringConvertible {
    /// What is wrong.
    public enum Problem: Equatable, Sendable {
        /// The file has fewer than the 8 bytes of the header length.
        case fileTooSmall(size: Int)
        /// The header length exceeds `SafeTensorsFile.maxHeaderLength`.
        case headerTooLarge(length: UInt64)
        /// The header length runs past the end of the file.
        case headerPastEnd(length: Int, fileSize: Int)
        /// The header is not a UTF-8 JSON object of the right form.
        case invalidHeader(reason: String)
        /// A tensor's entry lacks a field or has one of the wrong type.
        case invalidEntry(name: String, reason: String)
        /// A tensor's dtype is not F32, F16 or BF16.
        case unsupportedDtype(name: String, dtype: String)
        /// A tensor's byte length is not its element count times the dtype size.
        case sizeMismatch(name: String, dtype: String, shape: [Int], byteCount: Int)
        /// A tensor's offsets end past the data buffer.
        case offsetsOutOfRange(name: String, begin: Int, end: Int, bufferSize: Int)
        /// A tensor's offsets overlap the previous tensor, leave a gap, or end before they begin.
        case invalidOffsets(name: String, begin: Int, end: Int, expectedBegin: Int)
        /// The tensors do not reach the end of the data buffer.
        case trailingBytes(covered: Int, bufferSize: Int)
        /// A required tensor is absent.
        case missingTensor(name: String, expectedShape: [Int])
        /// A required tensor has another shape.
        case wrongShape(name: String, expected: [Int], found: [Int])
        /// The file holds a tensor the reader does not know.
        case unexpectedTensor(name: String)
        /// A tensor holds a NaN or an infinity (a diverged run's weights), at flat index `index`.
        case nonFinite(name: String, index: Int, value: Float)
        /// The file cannot be read at all.
        case unreadable(reason: String)
    }

    /// The file's path (or the name given to `parse`).
    public var file: String
    /// What is wrong.
    public var problem: Problem

    /// An error about `file`.
    public init(file: String, _ problem: Problem) {
        self.file = file
        self.problem = problem
    }

    public var description: String {
        let what: String
        switch problem {
        case .fileTooSmall(let size):
            what = "file is \(size) bytes; a safetensors file starts with an 8-byte header length"
        case .headerTooLarge(let length):
            what = "header length \(length) exceeds the limit of \(SafeTensorsFile.maxHeaderLength) bytes; "
                + "the file is corrupt or not safetensors"
        case .headerPastEnd(let length, let fileSize):
            what = "header length \(length) runs past the end of the file (\(fileSize) bytes); "
                + "the file is truncated or corrupt"
        case .invalidHeader(let reason):
            what = "invalid header: \(reason)"
        case .invalidEntry(let name, let reason):
            what = "tensor '\(name)': \(reason)"
        case .unsupportedDtype(let name, let dtype):
            what = "tensor '\(name)' has dtype \(dtype); supported dtypes are F32, F16 and BF16"
        case .sizeMismatch(let name, let dtype, let shape, let byteCount):
            let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
            let size = DType(rawValue: dtype)?.size ?? 0
            what = "tensor '\(name)' (\(dtype), shape \(shape)) spans \(byteCount) bytes; "
                + "it needs \(count) elements × \(size) bytes"
        case .offsetsOutOfRange(let name, let begin, let end, let bufferSize):
            what = "tensor '\(name)' has data_offsets [\(begin), \(end)] past the end of the \(bufferSize)-byte "
                + "data buffer; the file is truncated or corrupt"
        case .invalidOffsets(let name, let begin, let end, let expectedBegin):
            let why =
                end < begin
                ? "end before begin"
                : begin < expectedBegin ? "overlaps the previous tensor" : "leaves a gap after the previous tensor"
            what = "tensor '\(name)' has data_offsets [\(begin), \(end)] (\(why)); it should begin at \(expectedBegin)"
        case .trailingBytes(let covered, let bufferSize):
            what = "tensors cover \(covered) of the \(bufferSize) data bytes; the rest belongs to no tensor"
        case .missingTensor(let name, let shape):
            what = "missing tensor '\(name)' (expected shape \(shape))"
        case .wrongShape(let name, let expected, let found):
            what = "tensor '\(name)' has shape \(found); expected \(expected)"
        case .unexpectedTensor(let name):
            what = "unexpected tensor '\(name)'; the model has no parameter of that name"
        case .nonFinite(let name, let index, let value):
            what = "tensor '\(name)' holds \(value) at element \(index); the weights diverged, so use an earlier checkpoint"
        case .unreadable(let reason):
            what = "cannot read: \(reason)"
        }
        return "\(file): \(what)"
    }
}
