package io.pgrelay.bench.harness;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.math.RoundingMode;

/**
 * Number formatting as C's printf and awk do it, because the tables must match the shell version
 * digit for digit: Java's {@code String.format} rounds half-up on the decimal expansion, C rounds
 * the exact binary value half-even, and awk prints computed non-integers with {@code %.6g}.
 */
final class NumFmt {
    private NumFmt() {}

    /** {@code printf "%.Nf"}. */
    static String fixed(double value, int decimals) {
        BigDecimal rounded = new BigDecimal(value).setScale(decimals, RoundingMode.HALF_EVEN);
        String text = rounded.toPlainString();
        boolean negative = value < 0 || (value == 0 && 1 / value < 0);
        if (negative && rounded.signum() == 0) {
            return "-" + text;
        }
        return text;
    }

    /**
     * bash's {@code printf "%.Nf"} of a number given as text: bash reads it as a long double
     * (64-bit significand), so a decimal tie such as 0.1145 rounds the way its long double lies
     * (0.114), not the way a double would (0.115).
     */
    static String fixed(String value, int decimals) {
        BigDecimal exact = parseExact(value);
        if (exact.signum() == 0) {
            return fixed(0.0, decimals);
        }
        BigDecimal rounded = longDouble(exact).setScale(decimals, RoundingMode.HALF_EVEN);
        String text = rounded.toPlainString();
        return exact.signum() < 0 && rounded.signum() == 0 ? "-" + text : text;
    }

    /** The x87 extended value nearest to x: a 64-bit integer significand times a power of two. */
    static BigDecimal longDouble(BigDecimal x) {
        BigDecimal abs = x.abs();
        int k = Math.getExponent(abs.doubleValue()) - 63;
        BigInteger low = BigInteger.ONE.shiftLeft(63);
        BigInteger high = BigInteger.ONE.shiftLeft(64);
        for (int attempt = 0; attempt < 4; attempt++) {
            BigInteger m =
                    scaleByPowerOfTwo(abs, -k)
                            .setScale(0, RoundingMode.HALF_EVEN)
                            .toBigIntegerExact();
            if (m.compareTo(high) >= 0) {
                k++;
            } else if (m.compareTo(low) < 0) {
                k--;
            } else {
                BigDecimal value = scaleByPowerOfTwo(new BigDecimal(m), k);
                return x.signum() < 0 ? value.negate() : value;
            }
        }
        return x;
    }

    private static BigDecimal scaleByPowerOfTwo(BigDecimal x, int n) {
        if (n >= 0) {
            return x.multiply(new BigDecimal(BigInteger.TWO.pow(n)));
        }
        // 2^-n = 5^n / 10^n: exact
        return x.multiply(new BigDecimal(BigInteger.valueOf(5).pow(-n))).scaleByPowerOfTen(n);
    }

    private static BigDecimal parseExact(String text) {
        java.util.regex.Matcher m = NUMBER.matcher(text == null ? "" : text);
        return m.find()
                ? new BigDecimal(m.group().trim().replaceFirst("^\\+", ""))
                : BigDecimal.ZERO;
    }

    private static final java.util.regex.Pattern NUMBER =
            java.util.regex.Pattern.compile("^\\s*[-+]?(\\d+\\.?\\d*|\\.\\d+)([eE][-+]?\\d+)?");

    /** How awk prints a computed number: integers as such, anything else with OFMT {@code %.6g}. */
    static String awk(double value) {
        if (value == Math.rint(value) && Math.abs(value) < 1e15) {
            return Long.toString((long) value);
        }
        return sixDigitsG(value);
    }

    private static String sixDigitsG(double value) {
        BigDecimal rounded =
                new BigDecimal(value).round(new MathContext(6, RoundingMode.HALF_EVEN));
        int exponent = rounded.precision() - rounded.scale() - 1;
        if (exponent < -4 || exponent >= 6) {
            BigDecimal mantissa = rounded.movePointLeft(exponent);
            String digits = stripZeros(mantissa.toPlainString());
            String sign = exponent < 0 ? "-" : "+";
            int abs = Math.abs(exponent);
            return digits + "e" + sign + (abs < 10 ? "0" : "") + abs;
        }
        return stripZeros(rounded.toPlainString());
    }

    private static String stripZeros(String text) {
        if (!text.contains(".")) {
            return text;
        }
        String stripped = text.replaceAll("0+$", "");
        return stripped.endsWith(".") ? stripped.substring(0, stripped.length() - 1) : stripped;
    }

    /** awk's and printf's reading of a numeric string: the leading number, 0 when there is none. */
    static double parse(String text) {
        if (text == null) {
            return 0;
        }
        java.util.regex.Matcher m = NUMBER.matcher(text);
        return m.find() ? Double.parseDouble(m.group().trim()) : 0;
    }

    /** {@code ratio a b}: a/b to two decimals, "-" unless a is given and b is positive. */
    static String ratio(String a, String b) {
        if (a == null || a.isEmpty() || b == null || parse(b) <= 0) {
            return "-";
        }
        return fixed(parse(a) / parse(b), 2);
    }

    /** {@code fmt N value}: the number rounded, or "-" when there is none. */
    static String orDash(String value, int decimals) {
        return value == null || value.isEmpty() ? "-" : fixed(value, decimals);
    }
}
