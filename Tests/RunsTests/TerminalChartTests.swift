import Foundation
import Runs
import XCTest

final class TerminalChartTests: XCTestCase {
    /// Two reward curves over 100 steps, the second learning more slowly, with a gap (a null) in the first.
    static let series: [ChartSeries] = {
        var fast: [(x: Double, y: Double)] = []
        var slow: [(x: Double, y: Double)] = []
        for step in 0...100 {
            let x = Double(step)
            let y: Double = 0.2 + 0.6 * (1 - exp(-x / 25)) + 0.03 * sin(x / 3)
            fast.append((x, step == 50 ? Double.nan : y))
            slow.append((x, 0.2 + 0.3 * x / 100))
        }
        return [ChartSeries(name: "quickstart", points: fast), ChartSeries(name: "sft-only", points: slow)]
    }()

    func testASCIIChartMatchesGolden() throws {
        let chart = TerminalChart.render(Self.series, title: "reward", width: 60, height: 12, unicode: false, color: false)
        try assertGolden(chart, "chart-ascii.txt")
        XCTAssertTrue(chart.unicodeScalars.allSatisfy { $0.isASCII }, "ASCII mode writes only ASCII")
        XCTAssertFalse(chart.contains("\u{1B}"))
        XCTAssertTrue(chart.split(separator: "\n").allSatisfy { $0.count <= 60 })
    }

    func testUnicodeColourChartMatchesGolden() throws {
        let chart = TerminalChart.render(Self.series, title: "reward", width: 60, height: 12, unicode: true, color: true)
        try assertGolden(chart, "chart-unicode.txt")
        XCTAssertTrue(chart.contains("\u{1B}[34m"), "the first series is blue")
        XCTAssertTrue(chart.contains("\u{1B}[33m"), "the second series is yellow")
        XCTAssertTrue(chart.unicodeScalars.contains { (0x2801...0x28FF).contains($0.value) }, "braille dots")
    }

    func testAxisLabelsSpanTheData() {
        let chart = TerminalChart.render(
            [ChartSeries(name: "kl", points: [(0, 0), (10, 0.5), (20, 1)])], title: "kl", width: 40, height: 5,
            unicode: false, color: false)
        let lines = chart.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines[0], "kl")
        XCTAssertTrue(lines[1].hasPrefix("1.00+"), lines[1])
        XCTAssertTrue(lines[5].hasPrefix("0.00+"), lines[5])
        XCTAssertTrue(lines[7].hasPrefix("     0"), lines[7])
        XCTAssertTrue(lines[7].hasSuffix("20"), lines[7])
        XCTAssertEqual(lines[8], "     * kl")
        // The line runs from the bottom-left corner to the top-right one.
        XCTAssertEqual(lines[5].dropFirst(5).first, "*")
        XCTAssertEqual(lines[1].last, "*")
    }

    func testNoDataSaysSo() {
        XCTAssertEqual(
            TerminalChart.render([ChartSeries(name: "a", points: [(1, .nan)])], title: "kl", unicode: true, color: false),
            "kl\n  (no data)\n")
    }
}
