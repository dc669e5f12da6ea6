import Foundation
import Runs
import XCTest

final class TensorBoardTests: XCTestCase {
    func testCRC32CMatchesTheStandardCheckValueAndTensorFlowMask() {
        // The check value of CRC-32C (RFC 3720, B.4) and a mask computed by hand from it.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        let crc: UInt32 = 0xE306_9283
        XCTAssertEqual(CRC32C.masked(Array("123456789".utf8)), ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
    }

    func testRecordFramingHoldsLengthAndBothMaskedCRCs() throws {
        let payload = Data("hello".utf8)
        let framed = [UInt8](TFRecord.frame(payload))
        XCTAssertEqual(framed.count, 8 + 4 + 5 + 4)
        XCTAssertEqual(Array(framed[0..<8]), [5, 0, 0, 0, 0, 0, 0, 0])
        let lengthCRC = framed[8..<12].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        XCTAssertEqual(lengthCRC, CRC32C.masked(framed[0..<8]))
        let dataCRC = framed[17..<21].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        XCTAssertEqual(dataCRC, CRC32C.masked(Array("hello".utf8)))
    }

    func testEventEncodingIsTheProtobufWireFormat() {
        let event = TensorBoardEvent(wallTime: 1.5, step: 3, scalars: [("kl", 0.5)])
        // wall_time: key 0x09 + fixed64 1.5; step: key 0x10 + varint 3; summary: key 0x2a, len, Value.
        let wall: [UInt8] = [0x09] + withUnsafeBytes(of: (1.5).bitPattern.littleEndian, Array.init)
        let value: [UInt8] = [0x0A, 2] + Array("kl".utf8) + [0x15] + withUnsafeBytes(of: Float(0.5).bitPattern.littleEndian, Array.init)
        let summary: [UInt8] = [0x0A, UInt8(value.count)] + value
        XCTAssertEqual([UInt8](event.encoded), wall + [0x10, 3, 0x2A, UInt8(summary.count)] + summary)
    }

    func testWrittenEventsReadBackWithHeaderAndScalars() throws {
        let directory = try temporaryDirectory(self)
        let writer = try TensorBoardWriter(directory: directory, wallTime: 100)
        try writer.write(step: 1, scalars: [("reward", 0.25), ("eval/pass@1", 0.5)], wallTime: 101)
        try writer.write(step: 300, scalars: [("sft/loss", -2)], wallTime: 102)
        writer.close()
        XCTAssertTrue(writer.url.lastPathComponent.hasPrefix("events.out.tfevents.100."))
        let events = try TensorBoardWriter.readEvents(in: directory)
        XCTAssertEqual(events, [
            TensorBoardEvent(wallTime: 100, step: 0, fileVersion: "brain.Event:2"),
            TensorBoardEvent(wallTime: 101, step: 1, scalars: [("reward", 0.25), ("eval/pass@1", 0.5)]),
            TensorBoardEvent(wallTime: 102, step: 300, scalars: [("sft/loss", -2)]),
        ])
    }

    func testTruncatedLastRecordIsDroppedAndCorruptionIsAnError() throws {
        let directory = try temporaryDirectory(self)
        let writer = try TensorBoardWriter(directory: directory, wallTime: 0)
        try writer.write(step: 1, scalars: [("reward", 1)], wallTime: 1)
        writer.close()
        let full = try Data(contentsOf: writer.url)
        try full.dropLast(3).write(to: writer.url)
        XCTAssertEqual(try TensorBoardWriter.readEvents(at: writer.url).count, 1)
        var damaged = [UInt8](full)
        damaged[damaged.count - 6] ^= 0xFF
        try Data(damaged).write(to: writer.url)
        XCTAssertThrowsError(try TensorBoardWriter.readEvents(at: writer.url)) { error in
            XCTAssertTrue("\(error)".contains("data CRC mismatch"), "\(error)")
        }
    }

    func testTensorBoardsOwnReaderReadsTheFile() throws {
        let directory = try temporaryDirectory(self)
        let log = try MetricsLog(runDirectory: directory)
        try log.log(step: 0, stage: "sft", ["loss": 2.5])
        try log.log(step: 1, stage: "grpo", ["reward": 0.75, "kl": 0.001])
        try log.log(step: 1, stage: "eval", ["eval/pass@1": 0.4])
        log.close()
        let path = TensorBoardWriter.eventFiles(in: directory)[0].path
        let script = """
            import sys
            from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
            for e in EventFileLoader(sys.argv[1]).Load():
                if e.HasField('file_version'):
                    print('version', e.file_version)
                for v in e.summary.value:
                    x = v.simple_value if v.HasField('simple_value') else v.tensor.float_val[0]
                    print(e.step, v.tag, repr(round(x, 6)))
            """
        guard let output = try python(script, arguments: [path], requiring: "tensorboard") else {
            throw XCTSkip("python3 with tensorboard is not installed")
        }
        let lines = output.split(separator: "\n").filter { !$0.contains("Warning") && !$0.contains("warn") }
        XCTAssertEqual(lines, [
            "version brain.Event:2", "0 sft/loss 2.5", "1 kl 0.001", "1 reward 0.75", "1 eval/pass@1 0.4",
        ])
    }
}
