package io.pgrelay; public final class Main { public static void main(String[] a) {} }
