import Foundation
import Tasks
import TestSupport
import XCTest

/// The committed datasets: reproducible byte for byte, described by the manifest, disjoint from
/// training, and loaded with typed errors for malformed lines.
final class DatasetTests: XCTestCase {
    /// The repository's `datasets/` folder.
    static let committed = Repository.root.appendingPathComponent("datasets")

    func testGenerateReproducesTheCommittedFilesByteForByte() throws {
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("ponder-datasets-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: temp) }
        let written = try Datasets.write(to: temp)
        XCTAssertEqual(written.count, TaskRegistry.all.count + 1)
        for url in written {
            let relative = String(url.path.dropFirst(temp.path.count + 1))
            let fresh = try Data(contentsOf: url)
            let committed = try Data(contentsOf: DatasetTests.committed.appendingPathComponent(relative))
            XCTAssertEqual(fresh, committed, "\(relative) differs from the generators; run `ponder tasks generate`")
        }
    }

    func testManifestDescribesEveryFile() throws {
        let data = try Data(contentsOf: DatasetTests.committed.appendingPathComponent("manifest.json"))
        let manifest = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        XCTAssertEqual(manifest["generator_version"] as? Int, Datasets.generatorVersion)
        XCTAssertEqual((manifest["seed"] as? NSNumber)?.uint64Value, Datasets.seed)
        let files = manifest["files"] as! [[String: Any]]
        XCTAssertEqual(files.map { $0["family"] as! String }, TaskRegistry.names)
        var total = 0
        for entry in files {
            let path = entry["path"] as! String
            let bytes = try Data(contentsOf: DatasetTests.committed.appendingPathComponent(path))
            XCTAssertEqual(entry["sha256"] as? String, SHA256.hex(bytes), path)
            let problems = try Datasets.load(DatasetTests.committed.appendingPathComponent(path))
            XCTAssertEqual(entry["count"] as? Int, problems.count)
            XCTAssertGreaterThan(entry["beyond_count"] as! Int, 0, "\(path) has a tier beyond the training levels")
            total += bytes.count
        }
        XCTAssertLessThan(total, 4_000_000, "datasets stay a few megabytes")
    }

    func testTestSetsHaveTwoTiersAndDistinctProblemsThatVerify() throws {
        for (family, problems) in try Datasets.loadDirectory(DatasetTests.committed) {
            let task = try XCTUnwrap(TaskRegistry.family(named: family))
            XCTAssertEqual(Set(problems.map(\.canonical)).count, problems.count, "\(family): no duplicates")
            XCTAssertEqual(Set(problems.map(\.difficulty)), Set(task.levels), family)
            XCTAssertTrue(problems.contains { $0.difficulty > task.trainingLevels.upperBound }, "\(family): beyond tier")
            for problem in problems {
                XCTAssertEqual(problem.family, family)
                XCTAssertTrue(problem.check(problem.answer).isCorrect, "\(problem.id)")
            }
        }
    }

    func testTrainingStreamsAndTestSetsNeverOverlap() throws {
        // Generate training problems at every level directly, the way the sampler does, and check that
        // none of the ones the sampler would keep is in a test set; then check the sampler's filter.
        let heldOut = try HeldOutSet.load(directory: DatasetTests.committed)
        XCTAssertEqual(heldOut.canonical, HeldOutSet.builtIn().canonical, "the files and the generators agree")
        var collisions = 0
        for family in TaskRegistry.all {
            for level in family.levels {
                for index in 0..<300 {
                    let problem = family.problem(seed: 1, stream: "train", level: level, index: index, id: "t")
                    if heldOut.contains(problem) { collisions += 1 }
                }
            }
        }
        // Collisions happen in small level-1 spaces, which is exactly why the sampler filters them.
        XCTAssertGreaterThan(collisions, 0)
        var sampler = try TrainingSampler(families: TaskRegistry.names, seed: 1, heldOut: heldOut)
        let served = try sampler.next(5000)
        XCTAssertTrue(Set(served.map(\.canonical)).isDisjoint(with: heldOut.canonical))
    }

    func testDatasetLineRoundTrips() throws {
        for family in TaskRegistry.all {
            let problem = family.problem(seed: 3, stream: "rt", level: 2, index: 0, id: "\(family.name)-rt")
            let parsed = try Datasets.parse(problem.jsonLine(tier: "training") + "\n", file: "rt.jsonl")
            XCTAssertEqual(parsed, [problem])
        }
    }

    func testUserJSONLWithDefaults() throws {
        let text = """
            {"prompt":"What is 6*7?","answer":"42"}

            {"prompt":"Capital of France?","answer":"Paris","verifier":"exact","id":"geo-1","difficulty":2}
            {"prompt":"Sort 3 1 2","answer":"[1, 2, 3]","verifier":{"kind":"compact"}}
            {"prompt":"Make 10 with 2 5","answer":"2*5","verifier":{"kind":"countdown","numbers":[2,5],"target":10}}
            """
        let problems = try Datasets.parse(text, file: "/data/mine.jsonl")
        XCTAssertEqual(problems.map(\.id), ["mine.jsonl:1", "geo-1", "mine.jsonl:4", "mine.jsonl:5"])
        XCTAssertEqual(problems[0].verifier, .integer, "integer answers default to the integer verifier")
        XCTAssertEqual(problems[1].verifier, .exact)
        XCTAssertEqual(problems[1].difficulty, 2)
        XCTAssertEqual(problems[0].family, "custom")
        XCTAssertEqual(problems[0].domain, .custom)
        XCTAssertTrue(problems[2].check("[1,2,3]").isCorrect)
        XCTAssertTrue(problems[3].check("5*2").isCorrect)
        XCTAssertEqual(Rewards.correctness("<answer>042</answer>", problems[0]), 1)
    }

    func testMalformedLinesAreRejectedWithFileLineAndKey() {
        let good = #"{"prompt":"p","answer":"1"}"#
        let cases: [(line: String, key: String?, says: String)] = [
            ("{not json", nil, "not a valid JSON object"),
            (#"{"answer":"1"}"#, "prompt", "missing key 'prompt'"),
            (#"{"prompt":"p"}"#, "answer", "missing key 'answer'"),
            (#"{"prompt":"p","answer":1}"#, "answer", "expected a string"),
            (#"{"prompt":"p","answer":"1","difficulty":"hard"}"#, "difficulty", "expected an integer"),
            (#"{"prompt":"p","answer":"1","verifier":"float"}"#, "verifier", "unknown verifier 'float'"),
            (#"{"prompt":"p","answer":"1,000","verifier":"integer"}"#, "answer", "not a canonical integer"),
            (#"{"prompt":"p","answer":""}"#, "answer", "empty"),
            (#"{"prompt":" ","answer":"1"}"#, "prompt", "empty"),
            (#"{"prompt":"p","answer":"1","domain":"poetry"}"#, "domain", "poetry"),
            (#"{"prompt":"p","answer":"1","verifier":{"kind":"countdown","numbers":[1]}}"#, "verifier.target", "missing key"),
            ("[1,2,3]", nil, "JSON object"),
        ]
        for (line, key, says) in cases {
            let text = good + "\n" + good.replacingOccurrences(of: "\"p\"", with: "\"q\"") + "\n" + line + "\n"
            XCTAssertThrowsError(try Datasets.parse(text, file: "data/bad.jsonl"), line) { error in
                guard let error = error as? DatasetError else { return XCTFail("\(line): untyped error \(error)") }
                XCTAssertEqual(error.file, "data/bad.jsonl")
                XCTAssertEqual(error.line, 3, line)
                if let key { XCTAssertEqual(error.key, key, line) }
                XCTAssertTrue(error.description.contains(says), "\(line): \(error.description)")
                XCTAssertTrue(error.description.hasPrefix("data/bad.jsonl:3"), error.description)
            }
        }
        XCTAssertThrowsError(try Datasets.parse(#"{"id":"a","prompt":"p","answer":"1"}"# + "\n" + #"{"id":"a","prompt":"q","answer":"2"}"#, file: "d.jsonl")) { error in
            XCTAssertEqual((error as? DatasetError)?.line, 2)
            XCTAssertTrue("\(error)".contains("repeats line 1"), "\(error)")
        }
        XCTAssertThrowsError(try Datasets.load(URL(fileURLWithPath: "/nonexistent/ponder.jsonl"))) { error in
            XCTAssertTrue(error is DatasetError)
        }
    }
}
