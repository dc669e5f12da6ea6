// Writes that a crash cannot leave half done (DESIGN.md, Conventions). An atomic write puts the bytes
// in a temporary file beside the target, flushes it and renames it over the target, so a reader sees
// the old file or the new one; it only ever replaces a regular file. An append-only file takes one
// write(2) per record, so every record reaches the file (and any reader) as soon as it is logged.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files atomically.
public enum AtomicFile {
    /// Writes `data` to `url` atomically. Throws `FileError` naming the file on failure.
    public static func write(_ data: Data, to url: URL) throws {
        if let kind = nonRegularKind(url.path) {
            throw FileError(path: url.path, reason: "is \(kind), not a regular file; name a file path to write to")
        }
        // Same directory as the target, so rename(2) never crosses a file system.
        let temporary = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw FileError(path: url.path, reason: "cannot write: \(errnoText())") }
        var failure = writeAll(fd, data)
        if failure == nil && fsync(fd) != 0 { failure = errnoText() }
        close(fd)
        if failure == nil && rename(temporary.path, url.path) != 0 { failure = errnoText() }
        if let failure {
            unlink(temporary.path)
            throw FileError(path: url.path, reason: "cannot write: \(failure)")
        }
    }

    /// Fills a folder beside `folder` (`.tmp-NAME-PID`) through `fill`, then puts it in `folder`'s place,
    /// moving any folder already there aside first (`.old-NAME-PID`, removed after): a killed writer
    /// leaves the old folder or the new one under the name, never a half-written one.
    public static func writeFolder(_ folder: URL, _ fill: (URL) throws -> Void) throws {
        let fm = FileManager.default, parent = folder.deletingLastPathComponent(), name = folder.lastPathComponent
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let tmp = parent.appendingPathComponent(".tmp-\(name)-\(getpid())")
        try? fm.removeItem(at: tmp)
        try fill(tmp)
        guard fm.fileExists(atPath: folder.path) else { return try fm.moveItem(at: tmp, to: folder) }
        let old = parent.appendingPathComponent(".old-\(name)-\(getpid())")
        try? fm.removeItem(at: old)
        try fm.moveItem(at: folder, to: old)
        try fm.moveItem(at: tmp, to: folder)
        try? fm.removeItem(at: old)
    }

    /// What `path` is when it exists and is not a regular file ("a directory", "a device", …): a
    /// rename onto it would replace a device node or a link with a file, or fail on a folder.
    public static func nonRegularKind(_ path: String) -> String? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a directory"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFIFO: return "a FIFO"
        case S_IFLNK: return "a symbolic link"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    /// Writes all of `data`, retrying short and interrupted writes; returns the error text on failure.
    static func writeAll(_ fd: Int32, _ data: Data) -> String? {
        data.withUnsafeBytes { buffer -> String? in
            var written = 0
            while written < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errnoText()
                }
                written += n
            }
            return nil
        }
    }

    /// The text of the last failed system call.
    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// An append-only file written with one write(2) per record, with no user-space buffer to lose in a crash.
public final class AppendOnlyFile {
    private var fd: Int32
    public let path: String

    /// Opens `url` for appending, creating it; `truncate` empties it first.
    public init(appendingTo url: URL, truncate: Bool) throws {
        path = url.path
        fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | (truncate ? O_TRUNC : 0), 0o644)
        guard fd >= 0 else { throw FileError(path: url.path, reason: "cannot open: \(AtomicFile.errnoText())") }
    }

    /// Appends `data`.
    public func append(_ data: Data) throws {
        guard fd >= 0 else { throw FileError(path: path, reason: "written after close") }
        if let failure = AtomicFile.writeAll(fd, data) {
            throw FileError(path: path, reason: "cannot write: \(failure)")
        }
    }

    /// Closes the file; later appends throw.
    public func close() {
        if fd >= 0 { _ = Foundation.close(fd) }
        fd = -1
    }

    deinit { close() }
}

/// A file could not be written; `path` is the destination that was asked for.
public struct FileError: Error, CustomStringConvertible, Equatable {
    /// The destination path.
    public var path: String
    /// What went wrong, with what the operating system said.
    public var reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// The name tests and callers have used for `FileError`.
public typealias AtomicFileError = FileError
