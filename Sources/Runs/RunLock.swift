// One writer per run folder: an advisory lock (flock) on runs/<run>/.lock, held for the life of the
// process. The kernel releases it when the process dies however it dies, so a killed run's lock never
// blocks its resume, while a live one stops a second `train` or `--resume` on the same folder.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The held lock of a run folder; released when this value is deinitialised or the process exits.
public final class RunLock {
    /// The lock file.
    public let url: URL
    private let fd: Int32

    /// The lock file of a run folder.
    public static func url(_ runDirectory: URL) -> URL { runDirectory.appendingPathComponent(".lock") }

    /// Takes the lock of `runDirectory` (creating the folder), or throws naming the process that holds it.
    public init(runDirectory: URL) throws {
        try? FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        url = Self.url(runDirectory)
        fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw RunsError.io(path: url.path, reason: "cannot open the run's lock file: \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOf: url, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw RunsError.locked(path: runDirectory.path, holder: holder.flatMap(Int.init))
        }
        // Record the holder for the message above (not for locking: flock is the lock).
        let pid = Data("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

extension Checkpoints {
    /// Removes what killed processes left in a run folder: half-written checkpoint folders
    /// (`.tmp-*`), half-deleted ones (`.deleting-*`) and atomic-write temporaries (`.NAME.tmp-*`). A
    /// checkpoint moved aside while being replaced (`.old-NAME-PID`) goes back to NAME when NAME is
    /// missing. Call only while holding the run's `RunLock`. Returns the names it removed or restored.
    @discardableResult
    public static func cleanStale(in runDirectory: URL) -> [String] {
        let fm = FileManager.default
        var done: [String] = []
        for dir in [runDirectory, directory(runDirectory)] {
            guard let names = try? fm.contentsOfDirectory(atPath: dir.path) else { continue }
            for name in names.sorted() {
                let url = dir.appendingPathComponent(name)
                if name.hasPrefix(".tmp-") || name.hasPrefix(".deleting-") || (name.hasPrefix(".") && name.contains(".tmp-")) {
                    if (try? fm.removeItem(at: url)) != nil { done.append(name) }
                } else if name.hasPrefix(".old-"), let dash = name.lastIndex(of: "-") {
                    let original = dir.appendingPathComponent(String(name[name.index(name.startIndex, offsetBy: 5)..<dash]))
                    if !fm.fileExists(atPath: original.path), (try? fm.moveItem(at: url, to: original)) != nil {
                        done.append(name)
                    } else if (try? fm.removeItem(at: url)) != nil {
                        done.append(name)
                    }
                }
            }
        }
        return done
    }
}
