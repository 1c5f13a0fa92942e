// What Lucene's analyzers make of text, to check the Python analyzers against (tests/ir/test_lucene_analysis.py):
// the analyzer Anserini uses for the language (LuceneAnalyzers.java). Compile and run as LuceneSearch.java says:
//   java -cp anserini-*-fatjar.jar:classes LuceneTokens LANGUAGE < texts.txt > tokens.txt
// LANGUAGE is en, de, fr or es. Each input line is one text; each output line holds its tokens, separated by
// spaces. LANGUAGE "norms" prints instead, for each length 0..N-1 (N the first argument after it), the length
// Lucene's BM25 uses for it (SmallFloat's lossy byte norm).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.util.SmallFloat;

public class LuceneTokens {
  public static void main(String[] args) throws Exception {
    if (args[0].equals("norms")) {
      for (int length = 0; length < Integer.parseInt(args[1]); length++) {
        System.out.println(SmallFloat.byte4ToInt(SmallFloat.intToByte4(length)));
      }
      return;
    }
    Analyzer analyzer = LuceneAnalyzers.forLanguage(args[0]);
    BufferedReader lines = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    StringBuilder out = new StringBuilder();
    for (String line; (line = lines.readLine()) != null; ) {
      out.append(String.join(" ", LuceneAnalyzers.tokens(analyzer, line))).append('\n');
    }
    System.out.print(out);
  }
}
