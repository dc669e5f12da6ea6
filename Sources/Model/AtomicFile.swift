// Atomic file writes (DESIGN.md, Conventions): a reader sees the old file or the new one, never a
// half-written file, even if the process is killed mid-write.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files atomically: the bytes go to a temporary file in the same directory, are flushed to
/// disk, and the temporary file is renamed over the destination.
public enum AtomicFile {
    /// Writes `data` to `url` atomically. Throws `AtomicFileError` naming the file on failure.
    public static func write(_ data: Data, to url: URL) throws {
        if let kind = nonRegularKind(url.path) {
            throw AtomicFileError(path: url.path, reason: "is \(kind), not a regular file; name a file path to write to")
        }
        let directory = url.deletingLastPathComponent()
        // Same directory as the target, so rename(2) never crosses a file system.
        let temporary = directory.appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw AtomicFileError(path: url.path, reason: errnoText()) }
        var failure: String?
        data.withUnsafeBytes { buffer in
            var written = 0
            while written < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errnoText()
                    return
                }
                written += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = errnoText() }
        close(fd)
        if failure == nil && rename(temporary.path, url.path) != 0 { failure = errnoText() }
        if let failure {
            unlink(temporary.path)
            throw AtomicFileError(path: url.path, reason: failure)
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

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
}

/// A file could not be written; `path` is the destination that was asked for.
public struct AtomicFileError: Error, CustomStringConvertible, Equatable {
    /// The destination path.
    public var path: String
    /// What the operating system said.
    public var reason: String
    public var description: String { "\(path): cannot write: \(reason)" }
}
