// The typed errors a user can cause in a run folder, and Basics' file writers reporting as them.

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


/// Basics' atomic write, its failures as `RunsError.io`.
enum AtomicWrite {
    static func write(_ data: Data, to url: URL) throws {
        do { try AtomicFile.write(data, to: url) } catch let e as FileError { throw RunsError.io(path: e.path, reason: e.reason) }
    }
}

/// Basics' append-only file, its failures as `RunsError.io`.
final class FileDescriptor {
    private let file: AppendOnlyFile
    init(appendingTo url: URL, truncate: Bool) throws {
        do { file = try AppendOnlyFile(appendingTo: url, truncate: truncate) } catch let e as FileError {
            throw RunsError.io(path: e.path, reason: e.reason)
        }
    }
    func append(_ data: Data) throws {
        do { try file.append(data) } catch let e as FileError { throw RunsError.io(path: e.path, reason: e.reason) }
    }
    func close() { file.close() }
}
