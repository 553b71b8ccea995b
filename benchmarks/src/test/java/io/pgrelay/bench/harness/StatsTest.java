package io.pgrelay.bench.harness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import org.junit.jupiter.api.Test;

class StatsTest {
    @Test
    void medianOfAnOddCountIsTheMiddleValueAsGiven() {
        Stats.Median m = Stats.med3(List.of("30.10", "5", "12.000"));
        assertEquals(new Stats.Median("12.000", "5", "30.10"), m);
    }

    @Test
    void medianOfAnEvenCountIsTheMeanOfTheMiddleTwoAsAwkPrintsIt() {
        // awk prints computed non-integers with %.6g: 13386.0526015 -> 13386.1
        assertEquals(
                new Stats.Median("13386.1", "12828.800764", "13943.304439"),
                Stats.med3(List.of("13943.304439", "12828.800764")));
        assertEquals("0.074", Stats.med3(List.of("0.077", "0.071")).median());
        assertEquals("15", Stats.med3(List.of("10", "20")).median());
        assertEquals("2.5", Stats.med3(List.of("4", "1", "2", "3")).median());
        assertNull(Stats.med3(List.of()));
    }

    @Test
    void numbersSortNumericallyNotAsText() {
        assertEquals(new Stats.Median("9.5", "9", "100"), Stats.med3(List.of("100", "9", "9.5")));
    }

    @Test
    void nearestRank() {
        assertEquals(1, Stats.nearestRank(1, 99));
        assertEquals(99, Stats.nearestRank(100, 99));
        assertEquals(100, Stats.nearestRank(101, 99));
        assertEquals(50, Stats.nearestRank(100, 50));
        assertEquals(51, Stats.nearestRank(101, 50));
    }

    @Test
    void printfRoundsTheBinaryValueHalfEven() {
        assertEquals("2", NumFmt.fixed(2.5, 0));
        assertEquals("4", NumFmt.fixed(3.5, 0));
        assertEquals("0.12", NumFmt.fixed(0.125, 2), "0.125 is exact: a tie, to even");
        assertEquals("0.14", NumFmt.fixed(0.135, 2), "0.135 is 0.13500000000000000888 in binary");
        assertEquals("-0.0", NumFmt.fixed(-0.01, 1));
        assertEquals("13386", NumFmt.fixed("13386.1", 0));
    }

    @Test
    void bashPrintfReadsTextAsALongDouble() {
        // what bash 5.2 printed: the long double nearest 0.1145 is below it, nearest 0.2365 above
        assertEquals("0.114", NumFmt.fixed("0.1145", 3));
        assertEquals("0.237", NumFmt.fixed("0.2365", 3));
        assertEquals("0.115", NumFmt.fixed(0.1145, 3), "a double 0.1145 is above it");
        assertEquals("13386", NumFmt.fixed("13386.1", 0));
        assertEquals("2", NumFmt.fixed("2.5", 0));
        assertEquals("-", NumFmt.orDash("", 1));
        assertEquals("30.0", NumFmt.orDash("30", 1));
    }

    @Test
    void awkNumberOutput() {
        assertEquals("7", NumFmt.awk(7.0));
        assertEquals("0.0615", NumFmt.awk(0.0615));
        assertEquals("1.23457e+06", NumFmt.awk(1234567.5));
        assertEquals("1e-05", NumFmt.awk(0.00001));
        assertEquals("123456", NumFmt.awk(123456.5), "a tie: to even");
    }

    @Test
    void ratioNeedsBothValues() {
        assertEquals("0.55", NumFmt.ratio("4726", "8635"));
        assertEquals("-", NumFmt.ratio(null, "8635"));
        assertEquals("-", NumFmt.ratio("4726", null));
        assertEquals("-", NumFmt.ratio("4726", "0"));
    }

    @Test
    void rotationStartsOneFurtherEachRun() {
        List<String> order = List.of("direct", "pgbouncer", "pgrelay", "haproxy");
        assertEquals(order, RunLoop.rotated(order, 1));
        assertEquals(
                List.of("pgbouncer", "pgrelay", "haproxy", "direct"), RunLoop.rotated(order, 2));
        assertEquals(
                List.of("haproxy", "direct", "pgbouncer", "pgrelay"), RunLoop.rotated(order, 4));
        assertEquals(order, RunLoop.rotated(order, 5));
        assertEquals(List.of(), RunLoop.rotated(List.of(), 3));
    }
}
