// TensorBoard event files, written and read without TensorFlow or swift-protobuf.
//
// A file is a sequence of TFRecords: uint64 length (little-endian), masked CRC32C of those 8 bytes,
// the payload, masked CRC32C of the payload. Each payload is an `Event` protobuf (tensorflow/core/util/
// event.proto): wall_time = 1 (double), step = 2 (int64), file_version = 3 (string, first record only),
// summary = 5 (Summary { repeated Value value = 1 }, Value { tag = 1 (string), simple_value = 2 (float) }).

import Foundation

/// CRC-32C (Castagnoli), the checksum TFRecord uses, with TensorFlow's masking.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { byte -> UInt32 in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// The CRC-32C of `bytes`.
    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TensorFlow masks stored CRCs so that a CRC of data that itself holds CRCs stays well distributed.
    public static func masked<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// One event of an event file: a step's scalars, or the file-version header.
public struct TensorBoardEvent: Equatable {
    /// Seconds since 1970.
    public var wallTime: Double
    /// The global step.
    public var step: Int
    /// "brain.Event:2" on the first event of a file, nil otherwise.
    public var fileVersion: String?
    /// The scalars, as (tag, value) in the order written.
    public var scalars: [(tag: String, value: Float)]

    /// An event with the given fields.
    public init(wallTime: Double, step: Int, fileVersion: String? = nil, scalars: [(tag: String, value: Float)] = []) {
        self.wallTime = wallTime
        self.step = step
        self.fileVersion = fileVersion
        self.scalars = scalars
    }

    public static func == (lhs: TensorBoardEvent, rhs: TensorBoardEvent) -> Bool {
        lhs.wallTime == rhs.wallTime && lhs.step == rhs.step && lhs.fileVersion == rhs.fileVersion
            && lhs.scalars.count == rhs.scalars.count
            && zip(lhs.scalars, rhs.scalars).allSatisfy { $0.tag == $1.tag && $0.value.bitPattern == $1.value.bitPattern }
    }

    /// The `Event` protobuf encoding.
    public var encoded: Data {
        var out = Data()
        Protobuf.appendKey(field: 1, wireType: 1, to: &out)
        Protobuf.appendLittleEndian(wallTime.bitPattern, to: &out)
        Protobuf.appendKey(field: 2, wireType: 0, to: &out)
        Protobuf.appendVarint(UInt64(bitPattern: Int64(step)), to: &out)
        if let fileVersion {
            Protobuf.appendBytes(field: 3, Data(fileVersion.utf8), to: &out)
        }
        if !scalars.isEmpty {
            var summary = Data()
            for (tag, value) in scalars {
                var entry = Data()
                Protobuf.appendBytes(field: 1, Data(tag.utf8), to: &entry)
                Protobuf.appendKey(field: 2, wireType: 5, to: &entry)
                Protobuf.appendLittleEndian(value.bitPattern, to: &entry)
                Protobuf.appendBytes(field: 1, entry, to: &summary)
            }
            Protobuf.appendBytes(field: 5, summary, to: &out)
        }
        return out
    }

    /// Decodes an `Event`; fields this type does not model are skipped.
    public init(decoding data: Data) throws {
        self.init(wallTime: 0, step: 0)
        var reader = Protobuf.Reader(Array(data))
        while let (field, wireType) = try reader.key() {
            switch (field, wireType) {
            case (1, 1): wallTime = Double(bitPattern: try reader.fixed64())
            case (2, 0): step = Int(Int64(bitPattern: try reader.varint()))
            case (3, 2): fileVersion = String(decoding: try reader.lengthDelimited(), as: UTF8.self)
            case (5, 2):
                var summary = Protobuf.Reader(try reader.lengthDelimited())
                while let (field, wireType) = try summary.key() {
                    guard field == 1, wireType == 2 else {
                        try summary.skip(wireType: wireType)
                        continue
                    }
                    var value = Protobuf.Reader(try summary.lengthDelimited())
                    var tag = ""
                    var number: Float = .nan
                    while let (field, wireType) = try value.key() {
                        switch (field, wireType) {
                        case (1, 2): tag = String(decoding: try value.lengthDelimited(), as: UTF8.self)
                        case (2, 5): number = Float(bitPattern: try value.fixed32())
                        default: try value.skip(wireType: wireType)
                        }
                    }
                    scalars.append((tag, number))
                }
            default: try reader.skip(wireType: wireType)
            }
        }
    }
}

/// A file of TFRecords is damaged (not merely cut short at its end).
public struct TFRecordError: Error, CustomStringConvertible, Equatable {
    /// The file.
    public var path: String
    /// Byte offset of the bad record.
    public var offset: Int
    /// What is wrong.
    public var reason: String
    public var description: String { "\(path): record at byte \(offset): \(reason)" }
}

/// TFRecord framing.
public enum TFRecord {
    /// One framed record.
    public static func frame(_ payload: Data) -> Data {
        var length = Data()
        Protobuf.appendLittleEndian(UInt64(payload.count), to: &length)
        var out = length
        Protobuf.appendLittleEndian(CRC32C.masked(length), to: &out)
        out += payload
        Protobuf.appendLittleEndian(CRC32C.masked(payload), to: &out)
        return out
    }

    /// The payloads of the complete records in `data`, checking both CRCs of each. A record cut short at
    /// the end (a writer killed mid-record, or still writing) ends the list without an error.
    public static func records(in data: Data, path: String) throws -> [Data] {
        let bytes = [UInt8](data)
        var records: [Data] = []
        var offset = 0
        while offset + 12 <= bytes.count {
            let header = bytes[offset..<offset + 8]
            let length = Int(header.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            guard littleEndian32(bytes, offset + 8) == CRC32C.masked(header) else {
                throw TFRecordError(path: path, offset: offset, reason: "length CRC mismatch")
            }
            let start = offset + 12
            guard length <= bytes.count - start, bytes.count - start - length >= 4 else { break }
            let payload = bytes[start..<start + length]
            guard littleEndian32(bytes, start + length) == CRC32C.masked(payload) else {
                throw TFRecordError(path: path, offset: offset, reason: "data CRC mismatch")
            }
            records.append(Data(payload))
            offset = start + length + 4
        }
        return records
    }

    private static func littleEndian32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        bytes[at..<at + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }
}

/// Appends events to one `events.out.tfevents.*` file, a record per call, flushed as it is written.
public final class TensorBoardWriter {
    /// The event file.
    public let url: URL
    private let file: FileDescriptor

    /// Creates a new event file in `directory`, named as TensorFlow names them, and writes its header.
    public init(directory: URL, wallTime: Double = Date().timeIntervalSince1970) throws {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        let name = "events.out.tfevents.\(Int(wallTime)).\(host).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        url = directory.appendingPathComponent(name)
        file = try FileDescriptor(appendingTo: url, truncate: true)
        try write(TensorBoardEvent(wallTime: wallTime, step: 0, fileVersion: "brain.Event:2"))
    }

    /// Writes one step's scalars as one event; tags keep the order given.
    public func write(step: Int, scalars: [(tag: String, value: Double)], wallTime: Double = Date().timeIntervalSince1970) throws {
        try write(TensorBoardEvent(wallTime: wallTime, step: step, scalars: scalars.map { ($0.tag, Float($0.value)) }))
    }

    /// Writes one event.
    public func write(_ event: TensorBoardEvent) throws {
        try file.append(TFRecord.frame(event.encoded))
    }

    /// Closes the file.
    public func close() { file.close() }

    /// The events of every event file in `directory`, file by file in name order (which is time order).
    public static func readEvents(in directory: URL) throws -> [TensorBoardEvent] {
        try eventFiles(in: directory).flatMap { try readEvents(at: $0) }
    }

    /// The events of one event file.
    public static func readEvents(at url: URL) throws -> [TensorBoardEvent] {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw RunsError.missingFile(path: url.path) }
        return try TFRecord.records(in: data, path: url.path).map { try TensorBoardEvent(decoding: $0) }
    }

    /// The event files in `directory`, sorted by name.
    public static func eventFiles(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasPrefix("events.out.tfevents.") }.sorted().map { directory.appendingPathComponent($0) }
    }
}

/// The few pieces of the protobuf wire format an `Event` needs.
enum Protobuf {
    static func appendVarint(_ value: UInt64, to out: inout Data) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    static func appendKey(field: Int, wireType: Int, to out: inout Data) {
        appendVarint(UInt64(field << 3 | wireType), to: &out)
    }

    static func appendBytes(field: Int, _ bytes: Data, to out: inout Data) {
        appendKey(field: field, wireType: 2, to: &out)
        appendVarint(UInt64(bytes.count), to: &out)
        out += bytes
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to out: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    /// Reads fields in order from one message's bytes.
    struct Reader {
        private let bytes: [UInt8]
        private var offset = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        struct Malformed: Error, CustomStringConvertible {
            var description: String { "malformed protobuf" }
        }

        /// The next field number and wire type, or nil at the end of the message.
        mutating func key() throws -> (Int, Int)? {
            guard offset < bytes.count else { return nil }
            let key = try varint()
            return (Int(key >> 3), Int(key & 7))
        }

        mutating func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard offset < bytes.count, shift < 64 else { throw Malformed() }
                let byte = bytes[offset]
                offset += 1
                result |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return result }
                shift += 7
            }
        }

        mutating func fixed64() throws -> UInt64 {
            try take(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }

        mutating func fixed32() throws -> UInt32 {
            try take(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }

        mutating func lengthDelimited() throws -> [UInt8] {
            Array(try take(Int(try varint())))
        }

        mutating func skip(wireType: Int) throws {
            switch wireType {
            case 0: _ = try varint()
            case 1: _ = try take(8)
            case 2: _ = try lengthDelimited()
            case 5: _ = try take(4)
            default: throw Malformed()
            }
        }

        private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard count >= 0, count <= bytes.count - offset else { throw Malformed() }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }
    }
}
