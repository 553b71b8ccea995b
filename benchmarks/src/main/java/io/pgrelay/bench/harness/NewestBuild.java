package io.pgrelay.bench.harness;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The default binary of an optional peer: the highest version among the files a glob names (the
 * shell's {@code compgen -G | sort -V | tail -n1}), or the glob itself when nothing matches, so
 * that the "not found" message names what was looked for.
 */
final class NewestBuild {
    private NewestBuild() {}

    static String find(String glob) {
        // The globs have their wildcard in one directory level below a fixed root:
        // /opt/anchors/x-*/bin/y
        int star = glob.indexOf('*');
        Path root = Path.of(glob.substring(0, glob.lastIndexOf('/', star)));
        PathMatcher matcher = FileSystems.getDefault().getPathMatcher("glob:" + glob);
        if (!Files.isDirectory(root)) {
            return glob;
        }
        try (Stream<Path> files = Files.walk(root, 3)) {
            List<String> found =
                    files.filter(matcher::matches)
                            .map(Path::toString)
                            .sorted(VERSION_ORDER)
                            .toList();
            return found.isEmpty() ? glob : found.get(found.size() - 1);
        } catch (IOException e) {
            return glob;
        }
    }

    /** {@code sort -V}, close enough for version numbers: digit runs compare as numbers. */
    static final Comparator<String> VERSION_ORDER =
            (a, b) -> {
                int i = 0;
                int j = 0;
                while (i < a.length() && j < b.length()) {
                    char ca = a.charAt(i);
                    char cb = b.charAt(j);
                    if (Character.isDigit(ca) && Character.isDigit(cb)) {
                        int si = i;
                        int sj = j;
                        while (i < a.length() && Character.isDigit(a.charAt(i))) {
                            i++;
                        }
                        while (j < b.length() && Character.isDigit(b.charAt(j))) {
                            j++;
                        }
                        int cmp =
                                new java.math.BigInteger(a.substring(si, i))
                                        .compareTo(new java.math.BigInteger(b.substring(sj, j)));
                        if (cmp != 0) {
                            return cmp;
                        }
                    } else {
                        if (ca != cb) {
                            return Character.compare(ca, cb);
                        }
                        i++;
                        j++;
                    }
                }
                return Integer.compare(a.length() - i, b.length() - j);
            };
}
