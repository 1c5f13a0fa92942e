// The analyzers Anserini indexes and searches with, built from Lucene's classes alone (so that any javac from 11
// on compiles the scripts that use them against Anserini's fatjar): for en, Anserini's DefaultEnglishAnalyzer
// (StandardTokenizer, EnglishPossessiveFilter, LowerCaseFilter, Lucene's English stop set, PorterStemFilter:
// Lucene's EnglishAnalyzer); for de, fr, es, the Lucene analyzer Anserini's AnalyzerMap names for the language,
// made with its default constructor.
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.de.GermanAnalyzer;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.apache.lucene.analysis.es.SpanishAnalyzer;
import org.apache.lucene.analysis.fr.FrenchAnalyzer;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;

public class LuceneAnalyzers {
  static Analyzer forLanguage(String language) {
    switch (language) {
      case "en": return new EnglishAnalyzer();
      case "de": return new GermanAnalyzer();
      case "fr": return new FrenchAnalyzer();
      case "es": return new SpanishAnalyzer();
      default: throw new IllegalArgumentException("no analyzer for language " + language);
    }
  }

  static List<String> tokens(Analyzer analyzer, String text) throws IOException {
    List<String> tokens = new ArrayList<>();
    try (TokenStream stream = analyzer.tokenStream("contents", text)) {
      CharTermAttribute term = stream.addAttribute(CharTermAttribute.class);
      stream.reset();
      while (stream.incrementToken()) {
        tokens.add(term.toString());
      }
      stream.end();
    }
    return tokens;
  }
}
