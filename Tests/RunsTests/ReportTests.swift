import Foundation
import Runs
import XCTest

final class ReportTests: XCTestCase {
    /// A copy of the fixture run in a temporary folder, so the report is written there.
    private func copiedFixture() throws -> URL {
        let directory = try temporaryDirectory(self).appendingPathComponent("fixture-run")
        try FileManager.default.copyItem(at: try fixtureRun().runDirectory, to: directory)
        return directory
    }

    func testReportIsSelfContainedAndEscapesEverything() throws {
        let directory = try copiedFixture()
        let url = try Report.write(runDirectory: directory)
        XCTAssertEqual(url, directory.appendingPathComponent("report.html"))
        let html = text(url)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertFalse(html.lowercased().contains("http"), "no network fetches, not even a namespace URL")
        XCTAssertFalse(html.lowercased().contains("<script"))
        XCTAssertFalse(html.lowercased().contains("<link"))
        XCTAssertFalse(html.contains("url("))
        XCTAssertTrue(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; 41"))
        XCTAssertTrue(html.contains("# fixture &lt;config&gt; &amp; friends\nseed: 0"), "the config verbatim, escaped")
        XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, 1)
        XCTAssertEqual(html.components(separatedBy: "<g transform=").count - 1, 7, "six default curves and the SFT loss")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "written atomically, no temporary file left")
    }

    func testEvalTableComparesFirstAndLastEvalOverallPerFamilyAndLevel() throws {
        let (html, warnings) = try Report.html(for: RunReader(runDirectory: try copiedFixture()))
        XCTAssertEqual(warnings, [])
        XCTAssertTrue(html.contains("<th>first (step 0)</th><th>last (step 40)</th>"))
        let row = { (scope: String, metric: String, first: String, last: String, change: String) -> String in
            "<td>\(scope)</td><td>\(metric)</td><td>\(first)</td><td>\(last)</td><td class=\"up\">\(change)</td>"
        }
        XCTAssertTrue(html.contains(row("overall", "pass@1", "0.5", "0.7", "+0.2")))
        XCTAssertTrue(html.contains(row("add", "pass@1", "0.6", "0.8", "+0.2")))
        XCTAssertTrue(html.contains(row("mul L2", "pass@1", "0.3", "0.5", "+0.2")))
        let order = ["<td>overall</td><td>pass@1</td>", "<td>overall</td><td>pass@k</td>", "<td>add</td>",
                     "<td>add L1</td>", "<td>add L2</td>", "<td>mul</td>", "<td>mul L1</td>"]
        let positions = order.map { html.range(of: $0)!.lowerBound }
        XCTAssertEqual(positions, positions.sorted(), "overall first, then each family with its levels")
    }

    func testCompletionsAreHighlightedWhereFormatOrAnswerWasWrong() throws {
        let (html, _) = try Report.html(for: RunReader(runDirectory: try copiedFixture()))
        XCTAssertEqual(html.components(separatedBy: "<details").count - 1, 3, "one per logged step")
        XCTAssertTrue(html.contains("<details open><summary>step 40: mean reward 0.55, 1/2 correct</summary>"))
        XCTAssertEqual(html.components(separatedBy: "<div class=\"completion wrong bad-format\">").count - 1, 3)
        XCTAssertEqual(html.components(separatedBy: "<div class=\"completion\">").count - 1, 3)
        XCTAssertTrue(html.contains("<span class=\"zero\">correctness 0</span><span class=\"zero\">format 0</span>"))
    }

    func testReportOfAnEmptyRunSaysWhatIsMissing() throws {
        let directory = try temporaryDirectory(self)
        let html = text(try Report.write(runDirectory: directory))
        XCTAssertTrue(html.contains("No metrics yet."))
        XCTAssertTrue(html.contains("No eval yet."))
        XCTAssertTrue(html.contains("No completions logged yet."))
        XCTAssertTrue(html.contains("This run has no config.yaml."))
        XCTAssertThrowsError(try Report.write(runDirectory: directory.appendingPathComponent("missing"))) { error in
            XCTAssertEqual(error as? RunsError, .missingRun(path: directory.appendingPathComponent("missing").path))
        }
    }
}

final class RunsTableTests: XCTestCase {
    func testTableListsRunsWithStateStepRewardAndBestEval() throws {
        let root = try temporaryDirectory(self)
        try FileManager.default.copyItem(at: try fixtureRun().runDirectory, to: root.appendingPathComponent("done"))
        let live = root.appendingPathComponent("live")
        let log = try MetricsLog(runDirectory: live)
        try log.log(step: 3, stage: "grpo", ["reward": 0.25])
        try log.log(step: 3, stage: "eval", ["eval/pass@1": 0.4])
        log.close()
        try RunStatus.write(RunStatus(state: .running, step: 3, totalSteps: 100, stage: "grpo"), to: live)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("not-a-run"), withIntermediateDirectories: true)

        let (runs, warnings) = try RunsTable.summaries(in: root)
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(runs.map(\.name), ["done", "live"])
        XCTAssertEqual(runs.map(\.state), [.finished, .running])
        XCTAssertEqual(runs[1].lastReward, 0.25)
        XCTAssertEqual(
            RunsTable.render(runs),
            """
            run   status    step   reward  best eval pass@1
            done  finished  40/40  0.869   0.700 (step 40)
            live  running   3/100  0.250   0.400 (step 3)

            """)
        XCTAssertThrowsError(try RunsTable.summaries(in: root.appendingPathComponent("none"))) { error in
            XCTAssertEqual("\(error)", "\(root.appendingPathComponent("none").path): no such folder")
        }
    }
}
