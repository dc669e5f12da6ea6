// The few primitives every file of a run shares: deterministic JSON text, atomic writes, and the typed
// errors a user can cause. Runs depends on Foundation only (DESIGN.md: Runs never imports Training), so
// these are small local versions rather than imports from Model or Tasks.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error a user can cause while reading or writing a run; each names the file or key at fault.
public enum RunsError: Error, CustomStringConvertible, Equatable {
    /// The run folder does not exist.
    case missingRun(path: String)
    /// A folder expected to hold runs does not exist.
    case missingFolder(path: String)
    /// A file of the run is absent.
    case missingFile(path: String)
    /// A line of a JSONL file is not a JSON object (a truncated last line is not an error).
    case badLine(path: String, line: Int, reason: String)
    /// A requested metric appears in none of the runs.
    case unknownMetric(name: String, available: [String])
    /// A file could not be read or written.
    case io(path: String, reason: String)
    /// Another live process holds the run folder's lock (its pid, when it wrote one).
    case locked(path: String, holder: Int?)

    public var description: String {
        switch self {
        case .missingRun(let path): return "\(path): no such run folder"
        case .missingFolder(let path): return "\(path): no such folder"
        case .missingFile(let path): return "\(path): no such file"
        case .badLine(let path, let line, let reason): return "\(path):\(line): \(reason)"
        case .unknownMetric(let name, let available):
            let known = available.isEmpty ? "the runs have no metrics yet" : "known: \(available.joined(separator: ", "))"
            return "unknown metric '\(name)'; \(known)"
        case .io(let path, let reason): return "\(path): \(reason)"
        case .locked(let path, let holder):
            return "\(path) is in use by another ponder process" + (holder.map { " (pid \($0))" } ?? "")
                + "; wait for it to finish or stop it, or pass --run-dir for a new folder"
        }
    }
}

/// Deterministic JSON text: fixed key order, fixed escaping, and numbers that read back bit for bit.
enum JSONText {
    /// Swift's `description` of a Double is the shortest text that parses back to the same value, on every
    /// platform; non-finite values have no JSON spelling and become null.
    static func number(_ value: Double) -> String {
        value.isFinite ? "\(value)" : "null"
    }

    /// A JSON string literal.
    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// An object of already-encoded values, keys in the order given.
    static func object(_ pairs: [(String, String)]) -> String {
        "{" + pairs.map { string($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }

    /// Parses one line as a JSON object, or nil when it is not one.
    static func parseObject(_ line: Substring) -> [String: Any]? {
        guard let data = line.data(using: .utf8),
            let value = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        else { return nil }
        return value as? [String: Any]
    }

    /// A step number: an integer in 0...10^15 (larger ones would overflow the charts' arithmetic), else nil.
    static func step(_ value: Any?) -> Int? {
        guard let n = value as? NSNumber else { return nil }
        let d = n.doubleValue
        return d >= 0 && d <= 1e15 && d == d.rounded() ? Int(d) : nil
    }

    /// A number from a parsed JSON value; null and non-numbers are NaN.
    static func double(_ value: Any?) -> Double {
        (value as? NSNumber)?.doubleValue ?? .nan
    }
}

/// Writes files so that a reader sees the old file or the new one, never a half-written one.
enum AtomicWrite {
    /// Writes `data` to a temporary file beside `url`, flushes it, and renames it over `url`.
    static func write(_ data: Data, to url: URL) throws {
        var st = stat()
        if lstat(url.path, &st) == 0 && st.st_mode & S_IFMT != S_IFREG {  // a rename would replace a device or link
            throw RunsError.io(path: url.path, reason: "is not a regular file (a device, FIFO, folder or link); name a file path to write to")
        }
        let temporary = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw RunsError.io(path: url.path, reason: errnoText()) }
        var failure = FileDescriptor.writeAll(fd, data)
        if failure == nil && fsync(fd) != 0 { failure = errnoText() }
        close(fd)
        if failure == nil && rename(temporary.path, url.path) != 0 { failure = errnoText() }
        if let failure {
            unlink(temporary.path)
            throw RunsError.io(path: url.path, reason: "cannot write: \(failure)")
        }
    }

    /// The text of the last failed system call.
    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// An append-only file written with one write(2) per record, so every record reaches the file (and any
/// reader) as soon as it is logged, with no user-space buffer to lose in a crash.
final class FileDescriptor {
    private var fd: Int32
    let path: String

    /// Opens `url` for appending, creating it; `truncate` empties it first.
    init(appendingTo url: URL, truncate: Bool) throws {
        path = url.path
        fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | (truncate ? O_TRUNC : 0), 0o644)
        guard fd >= 0 else { throw RunsError.io(path: url.path, reason: "cannot open: \(AtomicWrite.errnoText())") }
    }

    /// Appends `data`.
    func append(_ data: Data) throws {
        guard fd >= 0 else { throw RunsError.io(path: path, reason: "written after close") }
        if let failure = FileDescriptor.writeAll(fd, data) {
            throw RunsError.io(path: path, reason: "cannot write: \(failure)")
        }
    }

    /// Closes the file; later appends throw.
    func close() {
        if fd >= 0 { posixClose(fd) }
        fd = -1
    }

    deinit { close() }

    /// Writes all of `data`, retrying short writes; returns the error text on failure.
    static func writeAll(_ fd: Int32, _ data: Data) -> String? {
        data.withUnsafeBytes { buffer -> String? in
            var written = 0
            while written < buffer.count {
                let n = write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return AtomicWrite.errnoText()
                }
                written += n
            }
            return nil
        }
    }
}

/// close(2), reachable from types that have a `close()` method of their own.
func posixClose(_ fd: Int32) {
    _ = close(fd)
}
