import Foundation
import Runs
import XCTest

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The committed fixture run (Golden/fixture-run): 20 SFT steps, then 40 GRPO steps with evals at 0, 20, 40.
func fixtureRun() throws -> RunReader {
    try RunReader(
        runDirectory: URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent()
            .appendingPathComponent("Golden/fixture-run"))
}

final class CurvesTests: XCTestCase {
    func testSmoothingIsTensorBoardsDebiasedEMA() {
        let smoothed = Curves.smooth([1, 2, 3], weight: 0.5)
        // EMA 0.5, 1.25, 2.125 divided by 1 − 0.5ⁿ.
        XCTAssertEqual(smoothed[0], 1, accuracy: 1e-12)
        XCTAssertEqual(smoothed[1], 1.25 / 0.75, accuracy: 1e-12)
        XCTAssertEqual(smoothed[2], 2.125 / 0.875, accuracy: 1e-12)
        XCTAssertEqual(Curves.smooth([4, 4, 4], weight: 0.9), [4, 4, 4])
        let gap = Curves.smooth([1, .nan, 3], weight: 0.5)
        XCTAssertTrue(gap[1].isNaN)
        XCTAssertEqual(gap[2], (0.5 * 0.5 + 0.5 * 3) / 0.75, accuracy: 1e-12)
        XCTAssertEqual(Curves.smooth([1, 5], weight: 0), [1, 5])
    }

    func testDefaultMetricsAreRewardPerFunctionEvalKLAndLength() throws {
        let table = try fixtureRun().metrics()
        XCTAssertEqual(
            Curves.defaultMetrics([table]),
            ["reward", "rewards/correctness/mean", "rewards/format/mean", "eval/pass@1", "kl", "completions/mean_length"])
        let sftOnly = MetricsTable(rows: [MetricRow(step: 1, stage: "sft", values: ["loss": 2])], warnings: [])
        XCTAssertEqual(Curves.defaultMetrics([sftOnly]), ["sft/loss"])
        XCTAssertEqual(sftOnly.points("sft/loss").map(\.y), [2])
        XCTAssertTrue(sftOnly.points("loss").isEmpty, "an SFT loss is not the GRPO loss")
    }

    func testUnknownMetricIsATypedErrorListingKnownOnes() throws {
        let table = try fixtureRun().metrics()
        XCTAssertEqual(try Curves.metrics(requested: ["kl", "eval/pass@1"], in: [table]), ["kl", "eval/pass@1"])
        XCTAssertThrowsError(try Curves.metrics(requested: ["rewrd"], in: [table])) { error in
            guard case .unknownMetric(let name, let available)? = error as? RunsError else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "rewrd")
            XCTAssertTrue(available.contains("reward"))
            XCTAssertTrue("\(error)".hasPrefix("unknown metric 'rewrd'; known: "))
        }
    }

    func testOverlaidRunsKeepTheirOrderAndEvalIsNotSmoothed() throws {
        let table = try fixtureRun().metrics()
        let other = MetricsTable(
            rows: [MetricRow(step: 0, stage: "eval", values: ["eval/pass@1": 0.1]),
                   MetricRow(step: 10, stage: "eval", values: ["eval/pass@1": 0.9])], warnings: [])
        let charts = Curves.charts(runs: [("a", table), ("b", other)], metrics: ["eval/pass@1"], smoothing: 0.9)
        XCTAssertEqual(charts.map(\.title), ["eval/pass@1"])
        XCTAssertEqual(charts[0].series.map(\.name), ["a", "b"])
        XCTAssertEqual(charts[0].series[0].points.map(\.y), [0.5, 0.6, 0.7])
        XCTAssertEqual(charts[0].series[1].points.map(\.x), [0, 10])
    }

    func testSVGOfTheFixtureRunMatchesGolden() throws {
        let table = try fixtureRun().metrics()
        let charts = Curves.charts(
            runs: [("fixture-run", table)], metrics: Curves.defaultMetrics([table]), smoothing: Curves.defaultSmoothing)
        let svg = SVGChart.render(charts)
        try assertGolden(svg, "curves.svg")
        XCTAssertEqual(svg, SVGChart.render(charts), "deterministic")
        XCTAssertTrue(svg.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssertEqual(svg.components(separatedBy: "<g transform=").count - 1, 6, "one panel per default metric")
        XCTAssertTrue(XMLParser(data: Data(svg.utf8)).parse(), "well-formed XML")
        XCTAssertFalse(SVGChart.render(charts, standalone: false).contains("http"))
    }

    func testSVGWriteEscapesNamesAndMarksEmptyCharts() throws {
        let directory = try temporaryDirectory(self)
        let url = directory.appendingPathComponent("out.svg")
        let chart = Chart(title: "a<b & c", series: [ChartSeries(name: "\"run\"", points: [])], raw: [])
        try SVGChart.write([chart], to: url)
        let svg = text(url)
        XCTAssertTrue(svg.contains("a&lt;b &amp; c"))
        XCTAssertTrue(svg.contains("&quot;run&quot;"))
        XCTAssertTrue(svg.contains(">no data</text>"))
        XCTAssertTrue(XMLParser(data: Data(svg.utf8)).parse())
    }
}
